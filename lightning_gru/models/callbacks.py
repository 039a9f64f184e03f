"""Callbacks the ``lightning-gru`` command adds to every run: learning curves, predictions, the
random generators' states and ``last.ckpt`` at the end of every whole training epoch."""

import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_gru.models.figures import figure_dir, log_figure, plot_history

__all__ = ["LearningCurves", "PredictionWriter", "RandomStates", "WholeEpochCheckpoint"]


class LearningCurves(Callback):
    """Records the epoch values of ``train_*`` and ``val_*`` metrics and plots them at the end of
    ``fit`` as ``learning_curves.png`` (and a W&B image). The history is kept in checkpoints, so a
    resumed run draws its whole history.

    Args:
        names: metric names to follow, without the stage prefix (``loss`` follows
            ``train_loss`` and ``val_loss``); the ones a model does not log are skipped.

    Example:
        >>> import os
        >>> import tempfile
        >>> import lightning as L
        >>> from lightning_gru.data import SineWaveDataModule
        >>> from lightning_gru.models import Forecaster
        >>> root = tempfile.mkdtemp()
        >>> curves = LearningCurves()
        >>> trainer = L.Trainer(max_epochs=2, callbacks=[curves], accelerator="cpu",
        ...     default_root_dir=root, logger=False, enable_checkpointing=False,
        ...     enable_progress_bar=False, enable_model_summary=False)
        >>> data = SineWaveDataModule(num_points=200, seq_len=10, batch_size=8)
        >>> trainer.fit(Forecaster(hidden_size=4), data)
        >>> {key: [epoch for epoch, _ in points] for key, points in curves.history.items()}
        {'train_loss': [0, 1], 'val_loss': [0, 1], 'val_rollout_mse': [0, 1]}
        >>> os.listdir(root)
        ['learning_curves.png']
    """

    def __init__(self, names: tuple[str, ...] = ("loss", "acc", "ppl", "rollout_mse")) -> None:
        self.names = list(names)
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._validated_epoch = -1

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # this epoch's validation, if it had one, has run by now; callback_metrics keep the
        # values of the last validation, which are this epoch's only if it ran in this epoch
        metrics = trainer.callback_metrics
        validated = self._validated_epoch == trainer.current_epoch
        for name in self.names:
            for stage in ("train", "val") if validated else ("train",):
                key = f"{stage}_{name}"
                value = metrics.get(f"{key}_epoch", metrics.get(key))
                if value is not None:
                    self.history.setdefault(key, []).append((trainer.current_epoch, float(value)))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.history:
            log_figure(
                trainer, "learning_curves", plot_history(self.history, type(pl_module).__name__)
            )

    def state_dict(self) -> dict[str, Any]:
        return {"history": {k: [list(p) for p in v] for k, v in self.history.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        history = state_dict.get("history", {})
        self.history = {k: [(int(e), float(v)) for e, v in points] for k, points in history.items()}


class PredictionWriter(BasePredictionWriter):
    """Writes what ``predict_step`` returns, one JSON object per line, and prints it.

    The lines go to ``<output_file>.partial`` first, which replaces the file when the whole
    prediction has run: a ``predict`` that fails leaves the earlier predictions as they were
    (and what it wrote before failing in the ``.partial`` file). The file's path is printed to
    standard error at the end.

    Args:
        output_file: the JSON-lines file; ``None`` writes ``predictions.jsonl`` next to the
            checkpoints (the figure folder).
        print_predictions: also print each prediction to standard output (a line of more
            than ``PRINT_MAX_CHARS`` characters, such as a forecast with its whole context,
            shortened; the file has it whole).

    Example:
        >>> import json
        >>> import os
        >>> import tempfile
        >>> import lightning as L
        >>> from lightning_gru.data import SineWaveDataModule
        >>> from lightning_gru.models import Forecaster
        >>> output_file = os.path.join(tempfile.mkdtemp(), "predictions.jsonl")
        >>> writer = PredictionWriter(output_file, print_predictions=False)
        >>> trainer = L.Trainer(callbacks=[writer], accelerator="cpu", logger=False,
        ...     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        >>> data = SineWaveDataModule(num_points=100, seq_len=5)  # 20 test points
        >>> _ = trainer.predict(Forecaster(hidden_size=4), data)
        >>> with open(output_file, encoding="utf-8") as f:
        ...     rows = [json.loads(line) for line in f]
        >>> len(rows), sorted(rows[0]), torch.tensor(rows[0]["prediction"]).shape
        (1, ['context', 'prediction', 'target'], torch.Size([1, 19, 1]))
    """

    PRINT_MAX_CHARS = 300

    def __init__(self, output_file: str | None = None, print_predictions: bool = True) -> None:
        super().__init__(write_interval="batch")
        self.output_file = output_file
        self.print_predictions = print_predictions
        self.path: Path | None = None

    @property
    def partial_path(self) -> Path | None:
        """Where the lines go until the prediction has run."""
        return None if self.path is None else self.path.with_name(self.path.name + ".partial")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.path = Path(self.output_file) if self.output_file else None
        if self.path is None:
            self.path = figure_dir(trainer) / "predictions.jsonl"
        if trainer.is_global_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.partial_path.write_text("", encoding="utf-8")

    @rank_zero_only
    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        rows = prediction if isinstance(prediction, list) else [prediction]
        lines = [json.dumps(_plain(row), ensure_ascii=False) for row in rows]
        assert self.partial_path is not None
        with self.partial_path.open("a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
        if self.print_predictions:
            sys.stdout.write("".join(self._shorten(line) + "\n" for line in lines))

    def on_predict_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        if trainer.received_sigterm and not trainer.predict_loop.batch_progress.is_last_batch:
            # Lightning's fit and evaluation loops stop on SIGTERM, its predict loop does not:
            # stop here, the earlier predictions file left as it was
            raise SIGTERMException

    def _shorten(self, line: str) -> str:
        if len(line) <= self.PRINT_MAX_CHARS:
            return line
        return f"{line[: self.PRINT_MAX_CHARS]}... ({len(line):,} characters in {self.path})"

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.path is not None:
            self.partial_path.replace(self.path)
            print(f"predictions written to {self.path}", file=sys.stderr)  # stdout: the rows


def _plain(value: Any) -> Any:
    """``value`` with tensors turned into numbers and lists, for JSON."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class RandomStates(Callback):
    """Keeps the states of torch's, NumPy's and Python's global random generators in every
    checkpoint and restores them on resume, so that a run resumed from ``last.ckpt`` draws the
    same dropout masks (and anything else random) as the uninterrupted run would have. The CLI's
    ``last.ckpt`` is written after the epoch's validation, which draws from these generators too,
    so the saved states are those the next epoch starts from. CUDA generators are not kept.

    Example:
        >>> callback = RandomStates()
        >>> state = callback.state_dict()
        >>> first = torch.rand(3)
        >>> callback.load_state_dict(state)
        >>> torch.equal(torch.rand(3), first)
        True
    """

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
            "python": random.getstate(),
        }  # tensors and plain Python values: checkpoints load with weights_only=True

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, keys, position, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        random.setstate(state_dict["python"])


class WholeEpochCheckpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` that saves nothing of an epoch cut short.

    ``max_time`` or ``max_steps`` can stop a fit in the middle of an epoch, and Lightning still
    runs the epoch-end hooks, and validates the cut epoch when ``max_time`` (or any callback
    setting ``trainer.should_stop``) stopped it: a checkpoint of that partial epoch would resume
    at the next epoch and skip the rest of this one, and a best checkpoint of it would hold
    weights the resumed fit never has. The checkpoints stay those of whole epochs (and of
    validations inside an epoch, with ``val_check_interval``), from which a resumed fit repeats
    the cut one exactly.
    """

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not _epoch_cut_short(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (trainer.should_stop and _epoch_cut_short(trainer)):
            super().on_validation_end(trainer, pl_module)


def _epoch_cut_short(trainer: L.Trainer) -> bool:
    """Whether the current training epoch ran fewer batches than it has."""
    total = trainer.num_training_batches
    done = trainer.fit_loop.epoch_loop.batch_progress.current.ready
    return math.isfinite(total) and done < total
