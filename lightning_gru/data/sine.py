"""A noisy sine wave for one-step-ahead forecasting and autoregressive roll-outs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_gru._checks import check_at_least
from lightning_gru.data._common import (
    DataConfigError,
    DataFileError,
    check_fraction,
    check_one_process,
    check_seed,
    existing_file,
)
from lightning_gru.data.samplers import ShuffledBatchSampler, at_trainer_epoch


def generate_sine_series(
    num_points: int = 1000, noise_std: float = 0.1, seed: int = 42
) -> np.ndarray:
    """``sin(x) + noise`` for ``x = linspace(0, 10*pi, num_points)``, float64.

    The values equal those of the original recipe ``np.random.seed(seed)`` followed by
    ``np.random.normal(0, noise_std, num_points)``, without touching NumPy's global state.

    Example:
        >>> y = generate_sine_series()
        >>> y.shape, round(float(y[0]), 6)
        ((1000,), 0.049671)
    """
    _check_noise_std(noise_std)
    x = np.linspace(0, 10 * np.pi, num_points)
    noise = np.random.RandomState(seed).normal(0, noise_std, num_points)
    return np.sin(x) + noise


def _check_noise_std(noise_std: float) -> None:
    """A ``ValueError`` unless ``noise_std`` is a finite number >= 0."""
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std}")


def load_series(path: str | Path) -> np.ndarray:
    """Read a one-column CSV (one value per line, an optional header line) as float64.

    Blank lines are skipped; a first line with a letter that is not a number (``value``, not
    ``nan`` or ``1.2.3``) is taken as the header.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        DataFileError: (a ValueError) naming the file and the line, for a line with several
            columns, a value that is not a finite number, a file without values, or one
            that is not UTF-8.

    Example:
        >>> import shutil, tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> path = folder / "series.csv"
        >>> _ = path.write_text("temperature\\n1.5\\n\\n-2\\n3e-1\\n")  # a header, a blank line
        >>> series = load_series(path)
        >>> series.tolist(), series.dtype
        ([1.5, -2.0, 0.3], dtype('float64'))
        >>> shutil.rmtree(folder)
    """
    path = existing_file(path, "data_file")
    try:
        values = _read_values(path)
    except UnicodeDecodeError as err:
        raise DataFileError(
            f"{path}: cannot be read as UTF-8 text: UnicodeDecodeError: {err}"
        ) from err
    if not values:
        raise DataFileError(f"{path}: the series is empty (no numeric values)")
    return np.asarray(values, dtype=np.float64)


def _read_values(path: Path) -> list[float]:
    """The values of a series file, checked line by line (see :func:`load_series`)."""
    values: list[float] = []
    with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: drop a BOM (Excel's CSV)
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 1:
                raise DataFileError(f"{path}: line {number} has {len(row)} columns, expected one")
            try:
                value = float(row[0])
            except ValueError:
                if number == 1 and any(c.isalpha() for c in row[0]):
                    continue  # the header (a value such as 1.2.3 is refused below)
                raise DataFileError(f"{path}: line {number}: {row[0]!r} is not a number") from None
            if not math.isfinite(value):
                raise DataFileError(f"{path}: line {number}: {row[0]!r} is not a finite number")
            values.append(value)
    return values


def _check_series_length(points: int, train_fraction: float, seq_len: int) -> int:
    """The training points of a series of ``points``; a ``DataConfigError`` when they are
    fewer than a window (``seq_len + 1``) or the test points fewer than 2."""
    n_train = round(train_fraction * points)
    if n_train < seq_len + 1 or points - n_train < 2:
        raise DataConfigError(
            f"a series of {points} points gives {n_train} training points (need at least "
            f"seq_len + 1 = {seq_len + 1}) and {points - n_train} test points (need 2)"
        )
    return n_train


class SineWaveDataModule(L.LightningDataModule):
    """The noisy sine series of the forecasting experiment, or a one-column CSV series.

    The series (:func:`generate_sine_series`, or ``data_file`` read by :func:`load_series`) is
    split in time: the first ``round(train_fraction * N)`` points (800 of 1,000) for training,
    the rest (200) for testing.

    Windows of ``seq_len + 1`` points give an input ``(seq_len, 1)`` and its next-step target
    ``(seq_len, 1)``. With ``sliding=False`` (the original experiment) the windows are
    non-overlapping chunks, 38 from 800 points with ``seq_len=20``; ``sliding=True`` uses every
    start position. Validation is the tail of the training series: the last
    ``round(val_fraction * n)`` chunks (4 of 38 by default), or with sliding windows the windows
    inside its last ``val_fraction`` of points, so no validation point is ever a training
    target. The validation points are also rolled out like the test split, from the series
    before them (``val_rollout_mse``, what the recipes tune and checkpoint on).
    ``val_fraction=0`` trains on all windows and skips validation; one that holds out nothing to
    validate (0.01 of 38 windows) is refused.

    Train and validation batches are tuples ``(x, y)`` of float32 (B, seq_len, 1); training
    batches are shuffled anew each epoch, in an order fixed by ``seed`` and the epoch (so a run
    resumed from a checkpoint sees the same batches). The test and predict dataloaders yield
    one batch, a dict with ``context`` (1, N_train, 1), the whole training series, and
    ``target`` (1, N_test, 1), the test series: a model rolls out from ``target[:, :1]``
    feeding back its own predictions and is scored on ``target[:, 1:]`` (199 steps).

    Args:
        data_file: a one-column CSV series to use instead of the generated one.
        num_points: points of the generated series.
        noise_std: standard deviation of the Gaussian noise.
        seed: the noise seed and the seed of the batch order.
        train_fraction: the share of the series, from its start, used for training.
        val_fraction: the share of training windows (or points, with ``sliding``) held out.
        seq_len: inputs per window.
        sliding: overlapping windows at every start instead of non-overlapping chunks.
        batch_size: windows per batch (38: the whole training set of the original experiment).
        num_workers: ``DataLoader`` worker processes.

    Example:
        >>> dm = SineWaveDataModule()
        >>> dm.setup("fit")
        >>> len(dm.train_dataset), len(dm.val_dataset)
        (34, 4)
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> x.shape, y.dtype
        (torch.Size([34, 20, 1]), torch.float32)
        >>> batch = next(iter(dm.test_dataloader()))
        >>> batch["context"].shape, batch["target"].shape
        (torch.Size([1, 800, 1]), torch.Size([1, 200, 1]))
    """

    def __init__(
        self,
        data_file: str | None = None,
        num_points: int = 1000,
        noise_std: float = 0.1,
        seed: int = 42,
        train_fraction: float = 0.8,
        val_fraction: float = 0.1,
        seq_len: int = 20,
        sliding: bool = False,
        batch_size: int = 38,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        check_fraction("train_fraction", train_fraction, allow_zero=False)
        check_fraction("val_fraction", val_fraction)
        check_at_least(1, num_points=num_points, seq_len=seq_len, batch_size=batch_size)
        check_at_least(0, num_workers=num_workers)
        check_seed("seed", seed, maximum=2**32 - 1)  # NumPy's RandomState draws the noise
        _check_noise_std(noise_std)
        if data_file is None:  # (a data file is read in `setup`)
            _check_series_length(num_points, train_fraction, seq_len)
        self.save_hyperparameters()
        self.data_file = data_file
        self.num_points = num_points
        self.noise_std = noise_std
        self.seed = seed
        self.train_fraction = train_fraction
        self.val_fraction = val_fraction
        self.seq_len = seq_len
        self.sliding = sliding
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.series: np.ndarray | None = None
        self.train_dataset: TensorDataset | None = None
        self.val_dataset: TensorDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        """Load or generate the series and cut the windows."""
        check_one_process(self)
        if self.series is not None:
            return
        if self.data_file is not None:
            series = load_series(self.data_file)
        else:
            series = generate_sine_series(self.num_points, self.noise_std, self.seed)
        n_train = _check_series_length(len(series), self.train_fraction, self.seq_len)
        width = self.seq_len + 1
        if self.sliding:
            cut = n_train - round(n_train * self.val_fraction)
            train_starts = np.arange(cut - width + 1)
            val_starts = cut + np.arange(max(n_train - cut - width + 1, 0))
        else:
            chunks = width * np.arange(n_train // width)
            n_val = round(len(chunks) * self.val_fraction)
            train_starts, val_starts = chunks[: len(chunks) - n_val], chunks[len(chunks) - n_val :]
            cut = int(val_starts[0]) if n_val else n_train
        if len(train_starts) == 0:
            raise DataConfigError(f"val_fraction={self.val_fraction} leaves no training window")
        if self.val_fraction > 0 and len(val_starts) == 0 and n_train - cut < 2:
            raise DataConfigError(
                f"val_fraction={self.val_fraction} of {n_train} training points leaves nothing to "
                "validate (no window, and fewer than 2 points for the roll-out): raise it, or "
                "pass val_fraction=0 to train without validation"
            )
        self.series, self.n_train, self.val_start = series, n_train, cut
        self.train_dataset = self._windows(train_starts)
        self.val_dataset = self._windows(val_starts)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        sampler = ShuffledBatchSampler(len(self.train_dataset), self.batch_size, self.seed)
        sampler = at_trainer_epoch(sampler, self.trainer)
        return DataLoader(self.train_dataset, batch_sampler=sampler, num_workers=self.num_workers)

    def val_dataloader(self) -> list[DataLoader]:
        """The validation windows (one-step ``val_loss``), then the roll-out over the validation
        points (``val_rollout_mse``); either is left out when the validation part is too short
        for it, and both with ``val_fraction=0``."""
        self.setup()
        loaders = []
        if len(self.val_dataset):
            loaders.append(
                DataLoader(
                    self.val_dataset, batch_size=self.batch_size, num_workers=self.num_workers
                )
            )
        if self.n_train - self.val_start >= 2:
            loaders.append(self._rollout_loader(self.val_start, self.n_train))
        return loaders

    def test_dataloader(self) -> DataLoader:
        self.setup()
        return self._rollout_loader(self.n_train, len(self.series))

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def save_series(self, path: str | Path) -> Path:
        """Write the whole series as a one-column CSV (no header, one value per line), with
        enough digits that :func:`load_series` reads back the same float64 values."""
        self.setup()
        path = Path(path)
        path.write_text("".join(f"{value!r}\n" for value in self.series.tolist()))
        return path

    def _rollout_loader(self, start: int, stop: int) -> DataLoader:
        """One batch: the series before ``start`` as context, ``series[start:stop]`` as target."""
        series = torch.as_tensor(self.series, dtype=torch.float32)
        batch = {
            "context": series[:start].reshape(1, -1, 1),  # (1, start, 1)
            "target": series[start:stop].reshape(1, -1, 1),  # (1, stop - start, 1)
        }
        return DataLoader([batch], batch_size=None)

    def _windows(self, starts: np.ndarray) -> TensorDataset:
        series = torch.as_tensor(self.series, dtype=torch.float32)
        idx = torch.as_tensor(starts, dtype=torch.long)[:, None] + torch.arange(self.seq_len + 1)
        windows = series[idx].unsqueeze(-1)  # (N, seq_len + 1, 1)
        return TensorDataset(windows[:, :-1], windows[:, 1:])
