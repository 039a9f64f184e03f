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


@pytest.mark.parametrize(
    ("data_class", "name", "value"),
    [
        (IMDbDataModule, "batch_size", 2.5),
        (IMDbDataModule, "batch_size", "8"),
        (IMDbDataModule, "batch_size", None),
        (TimeMachineDataModule, "num_steps", "35"),
        (TimeMachineDataModule, "max_tokens", 1e4),
        (SineWaveDataModule, "batch_size", 2.0),
        (IMDbDataModule, "val_fraction", "0.1"),
    ],
)
def test_a_count_or_fraction_of_the_wrong_type_is_refused_by_name(data_class, name, value):
    """Guards against: ``2.5`` taken, then ``'float' object cannot be interpreted as an
    integer`` from the sampler at the first batch; ``'8'`` failing with "'<' not supported
    between instances of 'str' and 'int'", naming no argument."""
    with pytest.raises(TypeError, match=f"^{name} must be an? (integer|number), got "):
        data_class(**{name: value})


@pytest.mark.parametrize("data_class", [IMDbDataModule, SineWaveDataModule, TimeMachineDataModule])
@pytest.mark.parametrize("seed", [-1, None, 1.5])
def test_a_seed_numpy_would_refuse_is_refused_at_construction(data_class, seed):
    """Guards against: NumPy's "expected non-negative integer" (or "object of type 'NoneType'
    has no len()") from the first batch of ``fit``, naming neither the argument nor the module."""
    error = ValueError if isinstance(seed, int) else TypeError
    with pytest.raises(error, match="^seed must be"):
        data_class(seed=seed)


def test_the_sine_seed_must_fit_numpys_random_state():
    with pytest.raises(ValueError, match=r"^seed must be >= 0 and <= 4294967295, got 4294967296"):
        SineWaveDataModule(seed=2**32)
    SineWaveDataModule(seed=2**32 - 1)


@pytest.mark.parametrize("noise_std", [-1.0, float("nan")])
def test_a_bad_noise_std_is_refused_at_construction(noise_std):
    """Guards against: accepted, then refused only by ``setup``."""
    with pytest.raises(ValueError, match="noise_std must be a finite number >= 0"):
        SineWaveDataModule(noise_std=noise_std)


def test_imdb_refuses_a_vocabulary_without_room_for_its_two_reserved_tokens():
    """Guards against: accepted, then ``setup`` failing on ``max_size=1`` (not the argument's
    name) after loading and tokenising the data."""
    with pytest.raises(ValueError, match="^max_vocab_size must be >= 2, got 1$"):
        IMDbDataModule(max_vocab_size=1)
    IMDbDataModule(max_vocab_size=2)


@pytest.mark.parametrize(
    ("data_class", "name"),
    [(IMDbDataModule, "predict_texts"), (TimeMachineDataModule, "predict_prefixes")],
)
def test_one_string_instead_of_a_list_of_texts_is_refused(data_class, name):
    """Guards against: ``predict_texts="A great film"`` predicting each of its characters as
    a review, and ``predict_prefixes="time"`` refused as "holds an empty prefix"."""
    with pytest.raises(
        TypeError, match=rf"^{name} must be a list of str, got str: pass \['time'\]"
    ):
        data_class(**{name: "time"})
    with pytest.raises(TypeError, match=f"^{name} must hold str only, got None"):
        data_class(**{name: ["time", None]})
    data_class(**{name: ("time",)})  # a tuple is a list of texts too


def test_imdb_refuses_a_val_fraction_that_holds_out_no_review(tmp_path):
    """Guards against: 4 reviews per label and ``val_fraction=0.1`` training silently without
    validation (so a ``ReduceLROnPlateau`` or a checkpoint on ``val_loss`` failed after the
    first epoch), where the sine module refuses the same case."""
    from _data_fixtures import make_reviews, write_splits

    from lightning_gru.data import DataConfigError

    folder = write_splits(tmp_path / "csv", "csv", make_reviews(4), make_reviews(2))
    data = IMDbDataModule(str(folder), cache_dir=str(tmp_path / "cache"), val_fraction=0.1)
    with pytest.raises(
        DataConfigError, match=r"val_fraction=0.1 of the 8 reviews .* holds out none"
    ):
        data.setup("fit")
    data = IMDbDataModule(str(folder), cache_dir=str(tmp_path / "cache"), val_fraction=0)
    data.setup("fit")
    assert len(data.train_dataset) == 8 and data.val_dataloader() == []


def test_the_time_machine_refuses_a_val_fraction_that_holds_out_no_token(tmp_path):
    """Guards against: no validation at all, silently, where a validation part of one token
    (too short for a batch) is refused."""
    from lightning_gru.data import DataConfigError

    path = tmp_path / "short.txt"
    path.write_text("the time machine " * 2)  # 33 characters
    data = TimeMachineDataModule(str(path), cache_dir=str(tmp_path / "cache"), val_fraction=0.01)
    with pytest.raises(DataConfigError, match=r"val_fraction=0.01 of the 33 tokens holds out none"):
        data.setup("fit")
    data = TimeMachineDataModule(
        str(path), cache_dir=str(tmp_path / "cache"), val_fraction=0, batch_size=1, num_steps=4
    )
    data.setup("fit")
    assert data.val_dataloader() == []


def test_a_series_file_that_is_not_utf8_is_refused_by_name(tmp_path):
    """Guards against: a bare ``UnicodeDecodeError`` naming no file (the docs promise a
    ``ValueError`` naming the file and the problem)."""
    from lightning_gru.data import DataFileError, load_series

    path = tmp_path / "series.csv"
    path.write_bytes("temp\xe9rature\n1\n2\n".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"series.csv: cannot be read as UTF-8 text"):
        load_series(path)
