"""Sine-wave forecasting: a GRU, LSTM or MLP trained one step ahead, tested by an autoregressive
roll-out over the whole test split (the experiment of the original GRU-versus-MLP write-up)."""

from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from lightning_gru.models._common import PlateauCheck, build_optimizers
from lightning_gru.models.figures import log_figure, plot_forecast
from lightning_gru.nn.baselines import MLP, Backend, make_encoder

__all__ = ["ForecastNet", "Forecaster"]

State = Tensor | tuple[Tensor, Tensor] | None


class ForecastNet(nn.Module):
    """Maps a series to its next values: ``x[:, t]`` to a prediction of ``x[:, t + 1]``.

    A recurrent encoder (``gru``, ``lstm``, ``rnn``) followed by a linear head, or the ``mlp``
    baseline, which sees one value at a time and keeps no state.

    Args:
        encoder: ``"gru"``, ``"lstm"``, ``"rnn"`` or ``"mlp"``.
        input_size: features per time step.
        hidden_size: hidden units of the recurrent encoder.
        num_layers: stacked recurrent layers.
        mlp_hidden_sizes: the widths of the MLP's hidden layers.
        reset_after: GRU cell variant (see :class:`lightning_gru.nn.GRU`).
        backend: GRU kernel (see :class:`lightning_gru.nn.GRU`).

    >>> net = ForecastNet("gru", hidden_size=8)
    >>> y, state = net(torch.randn(4, 20, 1))
    >>> y.shape, state.shape
    (torch.Size([4, 20, 1]), torch.Size([1, 4, 8]))
    >>> net.rollout(torch.randn(1, 50, 1), torch.zeros(1, 1, 1), steps=10).shape
    torch.Size([1, 10, 1])
    """

    def __init__(
        self,
        encoder: Literal["gru", "lstm", "rnn", "mlp"] = "gru",
        input_size: int = 1,
        hidden_size: int = 16,
        num_layers: int = 1,
        mlp_hidden_sizes: tuple[int, ...] = (32, 16),
        reset_after: bool = True,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        self.kind = encoder
        if encoder == "mlp":
            self.mlp = MLP(input_size, tuple(mlp_hidden_sizes), input_size)
        else:
            self.encoder = make_encoder(
                encoder,
                input_size,
                hidden_size,
                num_layers,
                reset_after=reset_after,
                backend=backend,
            )
            self.head = nn.Linear(hidden_size, input_size)

    def forward(self, x: Tensor, state: State = None) -> tuple[Tensor, State]:
        """``(B, T, I)`` and an optional state to ``(B, T, I)`` predictions and the new state."""
        if self.kind == "mlp":
            return self.mlp(x), None
        out, state = self.encoder(x, state)  # (B, T, H)
        return self.head(out), state

    @torch.no_grad()
    def rollout(self, context: Tensor, start: Tensor, steps: int) -> Tensor:
        """Read ``context``, then feed each prediction back as the next input.

        Args:
            context: ``(B, N, I)`` the series before the roll-out (only sets the state).
            start: ``(B, 1, I)`` the first input of the roll-out.
            steps: how many values to predict.

        Returns:
            ``(B, steps, I)``: the predictions of the ``steps`` values after ``start``.
        """
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if start.dim() != 3 or start.shape[1] != 1:
            raise ValueError(
                "start must be one step, (batch, 1, features): each prediction is fed back as the "
                f"next input; got {tuple(start.shape)}"
            )
        if context.dim() != 3 or context.shape[0] != start.shape[0]:
            raise ValueError(
                f"context must be (batch, steps, features) with start's batch of {start.shape[0]}, "
                f"got {tuple(context.shape)}"
            )
        state = self(context)[1] if context.shape[1] > 0 else None
        x, predictions = start, [start[:, :0]]  # (B, 0, I): what zero steps give
        for _ in range(steps):
            x, state = self(x, state)  # (B, 1, I)
            predictions.append(x)
        return torch.cat(predictions, dim=1)  # (B, steps, I)


class Forecaster(PlateauCheck, L.LightningModule):
    """One-step-ahead training of a :class:`ForecastNet`; an autoregressive test roll-out.

    Training and validation batches are ``(x, y)`` windows, ``(B, T, 1)`` each, with ``y`` the
    next values of ``x``; the loss is their MSE (``train_loss``, ``val_loss``). A test or predict
    batch is ``{"context": (1, N_train, 1), "target": (1, N_test, 1)}``: the model reads the
    context, starts from ``target[:, :1]`` and predicts ``target[:, 1:]`` from its own outputs;
    ``test_mse`` is the MSE of that roll-out. The last roll-out is kept in :attr:`forecast`;
    a test draws it as ``forecast.png``. A validation batch of the same form (the validation points,
    after the series before them) gives ``val_rollout_mse``.

    Args:
        encoder: ``"gru"``, ``"lstm"``, ``"rnn"`` or ``"mlp"`` (the baseline: 32 and 16 ReLU
            units, one value at a time).
        input_size: features per time step.
        hidden_size: hidden units of the recurrent encoder.
        num_layers: stacked recurrent layers.
        mlp_hidden_sizes: the widths of the MLP baseline's hidden layers.
        reset_after: GRU cell variant (see :class:`lightning_gru.nn.GRU`).
        backend: GRU kernel (see :class:`lightning_gru.nn.GRU`).
        optimizer: builds the optimizer from the parameters.
        lr_scheduler: builds a learning-rate scheduler from the optimizer; ``None`` for none.
            A ``ReduceLROnPlateau`` watches ``val_rollout_mse``.

    >>> import os
    >>> import tempfile
    >>> import lightning as L
    >>> from lightning_gru.data import SineWaveDataModule
    >>> data = SineWaveDataModule(num_points=200, seq_len=10, batch_size=8)  # 40 test points
    >>> root = tempfile.mkdtemp()
    >>> trainer = L.Trainer(max_epochs=1, accelerator="cpu", default_root_dir=root, logger=False,
    ...     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    >>> model = Forecaster("gru", hidden_size=8)
    >>> trainer.fit(model, data)
    >>> sorted(trainer.callback_metrics)
    ['train_loss', 'train_loss_epoch', 'train_loss_step', 'val_loss', 'val_rollout_mse']
    >>> [result] = trainer.test(model, data, verbose=False)
    >>> list(result), model.forecast["prediction"].shape
    (['test_mse'], torch.Size([1, 39, 1]))
    >>> sorted(os.listdir(root))
    ['forecast.png']
    """

    def __init__(
        self,
        encoder: Literal["gru", "lstm", "rnn", "mlp"] = "gru",
        input_size: int = 1,
        hidden_size: int = 16,
        num_layers: int = 1,
        mlp_hidden_sizes: tuple[int, ...] = (32, 16),
        reset_after: bool = True,
        backend: Backend = "auto",
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.net = ForecastNet(
            encoder, input_size, hidden_size, num_layers, mlp_hidden_sizes, reset_after, backend
        )
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.forecast: dict[str, Tensor] | None = None

    def forward(self, x: Tensor, state: State = None) -> tuple[Tensor, State]:
        """See :meth:`ForecastNet.forward`."""
        return self.net(x, state)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(
        self,
        batch: tuple[Tensor, Tensor] | dict[str, Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> Tensor:
        if isinstance(batch, dict):  # the roll-out over the validation points
            _, mse = self._rollout(batch)
            self.log("val_rollout_mse", mse, prog_bar=True, batch_size=1, add_dataloader_idx=False)
            return mse
        return self._shared_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        forecast = self.predict_step(batch, batch_idx)
        mse = F.mse_loss(forecast["prediction"], forecast["target"][:, 1:])
        self.log("test_mse", mse, prog_bar=True, batch_size=1)
        return mse

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """The roll-out over ``target[:, 1:]``: ``{"context", "target", "prediction"}``."""
        prediction, _ = self._rollout(batch)
        self.forecast = {
            "context": batch["context"],
            "target": batch["target"],
            "prediction": prediction,
        }
        return self.forecast

    def _rollout(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Read ``context`` (B, N, I), start from ``target[:, :1]``, predict ``target[:, 1:]``;
        the prediction and its MSE."""
        target = batch["target"]  # (B, N_target, I)
        if target.dim() != 3 or target.shape[1] < 2:
            raise ValueError(
                "a roll-out batch needs a target of (batch, points >= 2, features): the first "
                f"point starts the roll-out, the rest are scored; got {tuple(target.shape)}"
            )
        prediction = self.net.rollout(batch["context"], target[:, :1], steps=target.shape[1] - 1)
        return prediction, F.mse_loss(prediction, target[:, 1:])

    def configure_optimizers(self) -> Any:
        # (val_loss needs validation windows, which the long-window recipes leave none of)
        return build_optimizers(self, self.optimizer, self.lr_scheduler, "val_rollout_mse")

    def on_test_epoch_end(self) -> None:
        if self.forecast is not None:
            f = self.forecast
            mse = F.mse_loss(f["prediction"], f["target"][:, 1:]).item()
            title = f"{self.hparams.encoder} roll-out, MSE {mse:.4f}"
            log_figure(
                self.trainer,
                "forecast",
                plot_forecast(f["context"][0], f["target"][0], f["prediction"][0], title),
            )

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch  # (B, T, I) each
        prediction, _ = self(x)
        loss = F.mse_loss(prediction, y)
        self.log(
            f"{stage}_loss",
            loss,
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=True,
            batch_size=len(x),
            add_dataloader_idx=False,
        )
        return loss
