"""The data modules refuse counts the data loaders would reject only once ``fit`` uses them."""

from __future__ import annotations

import pytest

from lightning_gru.data import IMDbDataModule, SineWaveDataModule, TimeMachineDataModule

COUNTS = [
    (SineWaveDataModule, "num_points", 1),
    (SineWaveDataModule, "seq_len", 1),
    (SineWaveDataModule, "batch_size", 1),
    (SineWaveDataModule, "num_workers", 0),
    (TimeMachineDataModule, "batch_size", 1),
    (TimeMachineDataModule, "num_steps", 1),
    (TimeMachineDataModule, "num_workers", 0),
    (IMDbDataModule, "batch_size", 1),
    (IMDbDataModule, "bucket_batches", 1),
    (IMDbDataModule, "num_workers", 0),
]


@pytest.mark.parametrize(("data_class", "name", "minimum"), COUNTS)
def test_a_count_below_its_minimum_is_refused_at_construction(data_class, name, minimum):
    with pytest.raises(ValueError, match=f"^{name} must be >= {minimum}, got {minimum - 1}$"):
        data_class(**{name: minimum - 1})
    data_class(**{name: minimum})  # the minimum itself is taken
