"""SineWaveDataModule: exact recipe values, windows, roll-out batch, CSV round trip, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_gru.data import (
    DataConfigError,
    SineWaveDataModule,
    generate_sine_series,
    load_series,
)


def recipe_series() -> np.ndarray:
    """The original experiment, global RNG and all."""
    state = np.random.get_state()
    try:
        np.random.seed(42)
        x = np.linspace(0, 10 * np.pi, 1000)
        return np.sin(x) + np.random.normal(0, 0.1, 1000)
    finally:
        np.random.set_state(state)


def make_dm(**kwargs) -> SineWaveDataModule:
    dm = SineWaveDataModule(**kwargs)
    dm.setup("fit")
    return dm


def test_series_equals_the_recipe_and_leaves_numpy_global_state_alone():
    before = np.random.get_state()[1].copy()
    assert np.array_equal(generate_sine_series(), recipe_series())
    assert np.array_equal(np.random.get_state()[1], before)
    assert np.array_equal(make_dm().series, recipe_series())


def test_non_overlapping_windows_hold_out_the_last_chunks():
    dm = make_dm()
    y = torch.as_tensor(recipe_series(), dtype=torch.float32)
    x_train, y_train = dm.train_dataset.tensors
    x_val, y_val = dm.val_dataset.tensors
    assert x_train.shape == y_train.shape == (34, 20, 1) and x_val.shape == (4, 20, 1)
    assert x_train.dtype == torch.float32
    windows = torch.cat([x_train, x_val])[..., 0]  # (38, 20): chunk k starts at 21 * k
    expected = torch.stack([y[21 * k : 21 * k + 20] for k in range(38)])
    assert torch.equal(windows, expected)
    assert torch.equal(torch.cat([y_train, y_val])[:, :-1], torch.cat([x_train, x_val])[:, 1:])
    assert torch.equal(torch.cat([y_train, y_val])[:, -1, 0], y[21 * torch.arange(38) + 20])
    everything = make_dm(val_fraction=0.0)
    assert len(everything.train_dataset) == 38 and everything.val_dataloader() == []


def test_sliding_windows_keep_validation_targets_out_of_training():
    dm = make_dm(sliding=True)
    assert (len(dm.train_dataset), len(dm.val_dataset)) == (700, 60)
    y = torch.as_tensor(recipe_series(), dtype=torch.float32)
    assert torch.equal(dm.train_dataset.tensors[1][-1, -1, 0], y[719])  # last training target
    assert torch.equal(dm.val_dataset.tensors[0][0, 0, 0], y[720])


@pytest.mark.parametrize(
    "num_points, train_fraction, n_train",
    [(1000, 0.8, 800), (100, 0.29, 29), (100, 0.57, 57)],
    ids=["default", "0.29-of-100", "0.57-of-100"],
)
def test_training_points_are_the_rounded_fraction(num_points, train_fraction, n_train):
    """Rounded, as the other modules do: 0.29 * 100 is 28.999999999999996 in floating point."""
    dm = make_dm(num_points=num_points, train_fraction=train_fraction, seq_len=5, val_fraction=0)
    batch = next(iter(dm.test_dataloader()))
    assert dm.n_train == n_train and batch["context"].shape == (1, n_train, 1)
    assert batch["target"].shape == (1, num_points - n_train, 1)


def test_dataloaders_shapes_and_shuffle_under_seed():
    dm = make_dm(batch_size=10)
    batches = list(dm.train_dataloader())
    assert [len(x) for x, _ in batches] == [10, 10, 10, 4]
    assert all(x.shape[1:] == (20, 1) and y.shape == x.shape for x, y in batches)
    again = [x for x, _ in make_dm(batch_size=10).train_dataloader()]
    assert all(torch.equal(a, b) for (a, _), b in zip(batches, again, strict=True))
    other = [x for x, _ in make_dm(batch_size=10, seed=7).train_dataloader()]
    assert not torch.equal(batches[0][0], other[0])


def test_the_training_batch_order_follows_the_seed():
    """Without noise the series is the same for every seed: only the batch order tells them
    apart (the seed of the noise alone would pass the test above)."""

    def first_batch(seed):
        return next(iter(make_dm(batch_size=10, noise_std=0.0, seed=seed).train_dataloader()))[0]

    assert torch.equal(first_batch(1), first_batch(1))
    assert not torch.equal(first_batch(1), first_batch(2))


def test_test_and_predict_yield_one_rollout_batch():
    dm = make_dm()
    y = torch.as_tensor(recipe_series(), dtype=torch.float32)
    for loader in (dm.test_dataloader(), dm.predict_dataloader()):
        (batch,) = list(loader)
        assert batch["context"].shape == (1, 800, 1) and batch["target"].shape == (1, 200, 1)
        assert batch["context"].dtype == batch["target"].dtype == torch.float32
        assert torch.equal(batch["context"][0, :, 0], y[:800])
        assert torch.equal(batch["target"][0, :, 0], y[800:])


def test_trainer_test_and_predict_accept_the_rollout_batch(tmp_path):
    import lightning as L

    class Persistence(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(()))

        def test_step(self, batch, batch_idx):
            prediction = batch["target"][:, :1].expand_as(batch["target"][:, 1:])
            self.log("test_mse", torch.mean((prediction - batch["target"][:, 1:]) ** 2))

        def predict_step(self, batch, batch_idx):
            return batch["target"].shape

    trainer = L.Trainer(
        logger=False, enable_progress_bar=False, default_root_dir=tmp_path, accelerator="cpu"
    )
    (metrics,) = trainer.test(Persistence(), SineWaveDataModule(), verbose=False)
    assert metrics["test_mse"] > 0
    assert trainer.predict(Persistence(), SineWaveDataModule()) == [torch.Size([1, 200, 1])]


def test_save_series_round_trips_exactly_and_loads_with_a_header(tmp_path):
    dm = make_dm()
    path = dm.save_series(tmp_path / "sindata_1000.csv")
    lines = path.read_text().splitlines()
    assert len(lines) == 1000 and float(lines[0]) == dm.series[0]
    loaded = make_dm(data_file=str(path))
    assert np.array_equal(loaded.series, dm.series)
    assert torch.equal(loaded.train_dataset.tensors[0], dm.train_dataset.tensors[0])
    with_header = tmp_path / "header.csv"
    with_header.write_text("value\n" + "\n".join(lines) + "\n\n")
    assert np.array_equal(load_series(with_header), dm.series)
    with_bom = tmp_path / "excel.csv"  # Excel's "CSV UTF-8" starts with a byte-order mark
    with_bom.write_text("\n".join(lines), encoding="utf-8-sig")
    assert np.array_equal(load_series(with_bom), dm.series)


@pytest.mark.parametrize("noise_std", [float("nan"), float("inf"), -0.1])
def test_a_noise_level_that_is_not_a_finite_number_at_least_zero_is_refused(noise_std):
    with pytest.raises(
        ValueError, match=f"noise_std must be a finite number >= 0, got {noise_std}"
    ):
        SineWaveDataModule(noise_std=noise_std).setup()


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param("value\n0.5\nabc\n", r"line 3: 'abc' is not a number", id="non-numeric"),
        pytest.param("1.2.3\n4\n5\n", r"line 1: '1.2.3' is not a number", id="first-value"),
        pytest.param("0.5\n0.1,0.2\n", "line 2 has 2 columns", id="two-columns"),
        pytest.param("0.5\nnan\n", "line 2: 'nan' is not a finite number", id="nan"),
        pytest.param("value\n\n", "the series is empty", id="empty"),
        pytest.param("", "the series is empty", id="empty-file"),
    ],
)
def test_bad_series_files_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        SineWaveDataModule(data_file=str(path)).setup()
    assert "bad.csv" in str(err.value)


def test_too_short_series_and_missing_file(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("\n".join(str(v) for v in range(20)))
    with pytest.raises(ValueError, match="seq_len"):
        SineWaveDataModule(data_file=str(path)).setup()
    with pytest.raises(FileNotFoundError, match="data_file"):
        SineWaveDataModule(data_file=str(tmp_path / "absent.csv")).setup()


@pytest.mark.parametrize("sliding", [False, True], ids=["chunks", "sliding"])
def test_validation_rolls_out_over_the_validation_points(sliding):
    dm = make_dm(sliding=sliding)
    loaders = dm.val_dataloader()
    assert len(loaders) == 2  # the one-step windows, then the roll-out
    rollout = next(iter(loaders[1]))
    start = 21 * 34 if not sliding else 720  # the first validation point
    y = torch.as_tensor(recipe_series(), dtype=torch.float32)
    assert torch.equal(rollout["context"][0, :, 0], y[:start])
    assert torch.equal(rollout["target"][0, :, 0], y[start:800])
    long_windows = make_dm(sliding=True, seq_len=200).val_dataloader()  # no window fits in 80
    assert len(long_windows) == 1 and next(iter(long_windows[0]))["target"].shape == (1, 80, 1)


def test_a_series_with_one_test_point_is_refused():
    """Guards against: one test point accepted (the roll-out needs a start and a target).
    Refused when the data module is built, before the command starts a W&B run."""
    with pytest.raises(DataConfigError, match=r"1 test points \(need 2\)"):
        SineWaveDataModule(num_points=100, train_fraction=0.99, seq_len=5)


def test_a_generated_series_shorter_than_a_window_is_refused_when_built():
    with pytest.raises(ValueError, match="^num_points must be >= 1, got 0$"):
        SineWaveDataModule(num_points=0)
    with pytest.raises(DataConfigError, match=r"gives 16 training points \(need at least"):
        SineWaveDataModule(num_points=20, seq_len=20)
    SineWaveDataModule(num_points=28, seq_len=20)  # 22 training points: one window and more


def test_a_data_file_is_read_in_setup(tmp_path):
    """Built before its file exists, the module reads it in ``setup`` (the command sets the
    data up before Lightning starts a W&B run: a missing file is refused there)."""
    path = tmp_path / "later.csv"
    data = SineWaveDataModule(data_file=str(path), seq_len=3)
    with pytest.raises(FileNotFoundError, match="data_file .*later.csv' does not exist"):
        data.setup("fit")
    path.write_text("".join(f"{i % 7}\n" for i in range(40)))
    data.setup("fit")
    assert len(data.series) == 40


@pytest.mark.parametrize("sliding", [False, True], ids=["chunks", "sliding"])
def test_a_validation_share_that_leaves_no_training_window_is_refused(sliding):
    """32 training points: a 0.9 share leaves 3 for training, less than one 10-step window
    (its target one step further)."""
    data = SineWaveDataModule(num_points=40, seq_len=10, val_fraction=0.9, sliding=sliding)
    with pytest.raises(DataConfigError, match="val_fraction=0.9 leaves no training window"):
        data.setup("fit")


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"seq_len": 200, "val_fraction": 0.1}, id="chunks"),  # 0.1 of 3 windows
        pytest.param({"sliding": True, "val_fraction": 0.001}, id="sliding"),  # 0.8 of a point
    ],
)
def test_a_validation_share_that_holds_out_nothing_is_refused(options):
    """Guards against: no validation at all, silently (no val_loss, no val_rollout_mse)."""
    with pytest.raises(DataConfigError, match="leaves nothing to validate"):
        SineWaveDataModule(**options).setup("fit")


def test_two_validation_points_are_rolled_out():
    """Guards against: a roll-out over exactly two validation points left out."""
    dm = SineWaveDataModule(num_points=50, sliding=True, val_fraction=0.05, seq_len=5)
    dm.setup()
    assert dm.n_train - dm.val_start == 2
    (rollout,) = dm.val_dataloader()
    assert next(iter(rollout))["target"].shape == (1, 2, 1)


def test_a_line_of_spaces_in_a_series_is_skipped(tmp_path):
    """Guards against: a line holding only spaces taken as a value (an error)."""
    path = tmp_path / "series.csv"
    path.write_text("value\n0.5\n   \n1.5\n")
    assert load_series(path).tolist() == [0.5, 1.5]


def test_a_noise_free_series_is_the_sine():
    """Guards against: ``noise_std=0`` refused."""
    assert np.array_equal(
        generate_sine_series(50, noise_std=0.0), np.sin(np.linspace(0, 10 * np.pi, 50))
    )
