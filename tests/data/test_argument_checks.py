"""The data modules refuse counts the data loaders would reject only once ``fit`` uses them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lightning_gru.data import (
    IMDbDataModule,
    SineWaveDataModule,
    TimeMachineDataModule,
)
from lightning_gru.data._common import read_local

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


@pytest.mark.parametrize("data_class", [IMDbDataModule, SineWaveDataModule, TimeMachineDataModule])
@pytest.mark.parametrize("stage", ["fit", "predict"])
def test_several_processes_are_refused_in_setup(data_class, stage):
    """Their batch samplers are not rank-aware: under DDP every process would train on every
    batch (and Lightning, failing to shard them, printed a traceback per process)."""
    data = data_class()
    data.trainer = SimpleNamespace(world_size=2)
    with pytest.raises(ValueError, match=f"{data_class.__name__} runs in one process, got 2"):
        data.setup(stage)


def test_read_local_lets_file_system_errors_through_unchanged():
    """Guards against: an ``OSError`` translated into a ``DataFileError``."""

    def load():
        raise PermissionError(13, "Permission denied", "/data/train.parquet")

    with pytest.raises(PermissionError):
        read_local("train.parquet", "parquet files", load)


def test_a_folder_given_as_data_file_is_refused_by_name(tmp_path):
    """Guards against: ``existing_file`` checks ``exists`` instead of ``is_file``."""
    with pytest.raises(FileNotFoundError, match="does not exist or is not a file"):
        SineWaveDataModule(data_file=str(tmp_path)).setup()


def test_a_data_file_under_home_is_found(tmp_path, monkeypatch):
    """Guards against: ``existing_file`` without ``expanduser``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "series.csv").write_text("\n".join(str(v) for v in range(100)))
    dm = SineWaveDataModule(data_file="~/series.csv", seq_len=5)
    dm.setup()
    assert dm.series.tolist() == list(range(100))


def test_an_unknown_token_kind_or_partition_is_refused():
    """From Python (the command's types refuse them before): not a silent default."""
    from lightning_gru.data.timemachine import SubsequenceBatchSampler

    with pytest.raises(ValueError, match="token must be one of .*, got 'byte'"):
        TimeMachineDataModule(token="byte")
    with pytest.raises(ValueError, match="partition must be one of .*, got 'shuffled'"):
        TimeMachineDataModule(partition="shuffled")
    with pytest.raises(ValueError, match="partition must be one of .*, got 'shuffled'"):
        SubsequenceBatchSampler(100, 2, 5, partition="shuffled")


@pytest.mark.parametrize(("batch_size", "bucket_batches"), [(0, 1), (1, 0)])
def test_the_bucket_sampler_refuses_empty_batches(batch_size, bucket_batches):
    from lightning_gru.data.samplers import BucketBatchSampler

    with pytest.raises(ValueError, match=r"batch_size \(\d\) and bucket_batches must be >= 1"):
        BucketBatchSampler([3, 1, 2], batch_size, bucket_batches=bucket_batches)
