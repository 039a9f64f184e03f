"""What the three LightningModules share: optimizer wiring, a throughput clock and the check of
the vocabulary."""

import time
from typing import Any

from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau


def build_optimizers(
    module: nn.Module,
    optimizer: OptimizerCallable,
    lr_scheduler: LRSchedulerCallable | None,
    monitor: str = "val_loss",
) -> Any:
    """The return value of ``configure_optimizers`` for an injected optimizer and scheduler.

    Args:
        module: whose parameters are optimised.
        optimizer: called with the parameters (``torch.optim.Adam``, a ``partial``, or what
            LightningCLI builds from ``class_path``/``init_args``).
        lr_scheduler: called with the optimizer; ``None`` for a constant learning rate.
        monitor: the metric a ``ReduceLROnPlateau`` scheduler watches, a validation metric
            that the module logs at every validation. The scheduler steps in the epochs that
            validate (every ``check_val_every_n_epoch``), so that it never reads a stale value
            or none.
    """
    opt = optimizer(module.parameters())
    if lr_scheduler is None:
        return opt
    scheduler = lr_scheduler(opt)
    config = {"scheduler": scheduler, "monitor": monitor}
    trainer = getattr(module, "_trainer", None)
    check_scheduler_validates(scheduler, trainer)
    if isinstance(scheduler, ReduceLROnPlateau) and trainer is not None:
        config["frequency"] = trainer.check_val_every_n_epoch or 1
    return {"optimizer": opt, "lr_scheduler": config}


def check_scheduler_validates(scheduler: Any, trainer: Any) -> None:
    """A ``ValueError`` for a ``ReduceLROnPlateau`` under a Trainer that never validates
    (``limit_val_batches=0``): it would wait for its validation metric and end the fit after
    the first epoch with Lightning's "conditioned on metric ... which is not available"."""
    if not isinstance(scheduler, ReduceLROnPlateau) or trainer is None:
        return
    if trainer.limit_val_batches == 0:
        raise ValueError(
            "ReduceLROnPlateau watches a validation metric, and the Trainer's "
            "limit_val_batches=0 validates nothing: validate, or choose another scheduler"
        )


def check_plateau_has_validation(trainer: Any) -> None:
    """A ``ValueError`` for a ``ReduceLROnPlateau`` when the validation data holds no batch (a
    data module with ``val_fraction=0``, or one whose validation part is empty): it would wait
    for its validation metric and end the fit after the first epoch that should validate with
    Lightning's "conditioned on metric ... which is not available". Run at the start of
    training, once the validation dataloaders are known (``check_scheduler_validates`` covers
    ``limit_val_batches=0`` earlier, in ``configure_optimizers``)."""
    if trainer is None or not trainer.enable_validation:
        return
    configs = trainer.lr_scheduler_configs
    plateaus = [c for c in configs if isinstance(c.scheduler, ReduceLROnPlateau)]
    if not plateaus:
        return
    if trainer.val_dataloaders is None:
        # not requested yet (the first epoch does not validate): request them as Lightning
        # does at the start of the fit when it does
        trainer.validating = True
        trainer.fit_loop.epoch_loop.val_loop.setup_data()
        trainer.training = True
    if trainer.val_dataloaders is not None and sum(trainer.num_val_batches) == 0:
        raise ValueError(
            f"ReduceLROnPlateau watches {plateaus[0].monitor}, and the validation data holds no "
            "batch (a data module with val_fraction=0?): validate, or choose another scheduler"
        )


class PlateauCheck:
    """For a LightningModule: ``check_plateau_has_validation`` at the start of training."""

    def on_train_start(self) -> None:
        check_plateau_has_validation(self._trainer)
        super().on_train_start()  # type: ignore[misc]


def check_vocab_size(module: Any) -> None:
    """A ``ValueError`` when the model's ``vocab_size`` is smaller than the attached data
    module's vocabulary, at any stage (ids past the model's embedding or one-hot width would
    fail deep inside torch, with no word of the vocabulary)."""
    trainer = module._trainer
    data = getattr(trainer, "datamodule", None) if trainer is not None else None
    if getattr(data, "vocab", None) is None:  # None: not built yet
        return
    size = getattr(data, "vocab_size", None)
    if size is not None and size > module.hparams.vocab_size:
        raise ValueError(
            f"the model's vocab_size={module.hparams.vocab_size} is smaller than the data "
            f"module's vocabulary of {size} tokens: build the model with "
            "vocab_size=datamodule.vocab_size (the lightning-gru command links them)"
        )


class VocabularyCheck:
    """For a LightningModule with ``hparams.vocab_size``: ``check_vocab_size`` at the start of
    every stage, once the data module's vocabulary is final. Not in ``setup``: Lightning
    restores a checkpoint (``ckpt_path``), the vocabulary it was trained with included, after
    ``setup``, and the data module's arguments may build a larger one until then."""

    def on_fit_start(self) -> None:
        check_vocab_size(self)

    def on_validation_start(self) -> None:
        check_vocab_size(self)

    def on_test_start(self) -> None:
        check_vocab_size(self)

    def on_predict_start(self) -> None:
        check_vocab_size(self)


class Throughput:
    """Items per second over the timed spans of an epoch (the training steps, not validation).

    >>> clock = Throughput()
    >>> clock.start(); clock.stop(100)
    >>> clock.items, clock.rate() > 0
    (100, True)
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the counts of the last epoch."""
        self.items, self.seconds, self._t0 = 0, 0.0, None

    def start(self) -> None:
        """Start timing a step."""
        self._t0 = time.perf_counter()

    def stop(self, items: int) -> None:
        """Stop timing a step that processed ``items``; a stop without a start is ignored."""
        if self._t0 is not None:
            self.seconds += time.perf_counter() - self._t0
            self.items += items
            self._t0 = None

    def rate(self) -> float:
        """Items per second so far (0 before any step)."""
        return self.items / self.seconds if self.seconds > 0 else 0.0
