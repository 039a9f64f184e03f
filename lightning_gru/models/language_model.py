"""A recurrent language model over characters or words, trained and sampled as d2l does."""

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torchmetrics import SumMetric
from torchmetrics.text import Perplexity

from lightning_gru._checks import check_at_least, check_texts
from lightning_gru.models._common import (
    PlateauCheck,
    Throughput,
    VocabularyCheck,
    build_optimizers,
)
from lightning_gru.models.figures import log_table
from lightning_gru.nn.baselines import Backend, Encoder, make_encoder

__all__ = ["LanguageModel", "LanguageModelNet"]

State = Tensor | tuple[Tensor, Tensor] | None


class LanguageModelNet(nn.Module):
    """Token ids to next-token logits: one-hot or embedding input, a recurrent encoder, a linear
    head over the vocabulary (d2l's ``RNNModel``). Takes ``(B, T)`` ids and returns ``(B, T, V)``
    logits; inside, it runs time-major as d2l does, which saves the encoder a transposed copy of
    its input and of its output and gradient, and returns the logits as a transposed view.

    Args:
        vocab_size: tokens in the vocabulary ``V``.
        encoder: ``"gru"``, ``"lstm"`` or ``"rnn"``.
        hidden_size: hidden units ``H``.
        num_layers: stacked layers.
        embedding_dim: ``None`` feeds one-hot vectors (d2l); otherwise an embedding of this size.
        dropout: dropout between layers and before the head.
        reset_after: GRU cell variant (see :class:`lightning_gru.nn.GRU`).
        backend: GRU kernel (see :class:`lightning_gru.nn.GRU`).
        init_std: ``None`` keeps PyTorch's initialisation; a number draws every weight from a
            normal distribution with this standard deviation and zeroes the biases, as d2l's
            models written from scratch do (``torch.randn(shape) * 0.01``).

    >>> net = LanguageModelNet(28, "gru", hidden_size=16)
    >>> logits, state = net(torch.randint(0, 28, (2, 35)))
    >>> logits.shape, state.shape
    (torch.Size([2, 35, 28]), torch.Size([1, 2, 16]))
    """

    def __init__(
        self,
        vocab_size: int,
        encoder: Encoder = "gru",
        hidden_size: int = 256,
        num_layers: int = 1,
        embedding_dim: int | None = None,
        dropout: float = 0.0,
        reset_after: bool = True,
        backend: Backend = "auto",
        init_std: float | None = None,
    ) -> None:
        super().__init__()
        if vocab_size < 1:  # (the encoder would name it input_size, or the embedding fail)
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if embedding_dim is not None and embedding_dim < 1:
            raise ValueError(
                f"embedding_dim must be >= 1, or None for one-hot inputs, got {embedding_dim}"
            )
        if init_std is not None and not init_std > 0:
            raise ValueError(f"init_std must be > 0, or None for PyTorch's, got {init_std}")
        self.vocab_size = vocab_size
        self.embedding = None if embedding_dim is None else nn.Embedding(vocab_size, embedding_dim)
        input_size = vocab_size if embedding_dim is None else embedding_dim
        self.encoder = make_encoder(
            encoder,
            input_size,
            hidden_size,
            num_layers,
            dropout,
            reset_after=reset_after,
            backend=backend,
            batch_first=False,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        if init_std is not None:
            for name, parameter in self.named_parameters():
                if "bias" in name:
                    nn.init.zeros_(parameter)
                else:
                    nn.init.normal_(parameter, std=init_std)

    def forward(self, ids: Tensor, state: State = None) -> tuple[Tensor, State]:
        """``(B, T)`` ids and an optional state to ``(B, T, V)`` logits and the new state."""
        if ids.dim() != 2:
            raise ValueError(f"expected (batch, time) token ids, got shape {tuple(ids.shape)}")
        ids = ids.T  # (T, B)
        if self.embedding is None:
            x = F.one_hot(ids, self.vocab_size).to(self.head.weight.dtype)  # (T, B, V)
        else:
            x = self.embedding(ids)  # (T, B, E)
        out, state = self.encoder(x, state)  # (T, B, H)
        return self.head(self.dropout(out)).transpose(0, 1), state  # (B, T, V)


class LanguageModel(PlateauCheck, VocabularyCheck, L.LightningModule):
    """Next-token prediction on ``(X, Y)`` batches of ``(B, num_steps)`` token ids.

    Logs ``{stage}_loss`` (cross-entropy per token) and ``{stage}_ppl`` (torchmetrics
    perplexity) for val and test. In training: ``train_loss_step`` at the steps the Trainer's
    logger writes (every ``log_every_n_steps``); after an epoch's last step ``train_loss_epoch``
    (the mean over the epoch's tokens) and ``train_ppl`` (its exponential); at the epoch's end
    ``train_tokens_per_sec`` (the training steps only). With the sequential partition, where
    each batch continues the previous one, the hidden state is carried from batch to batch
    (detached, so gradients stop at the batch) and reset at the start of every epoch; with the
    random partition it starts from zero in every batch, as in d2l. Clip gradients with the
    Trainer's ``gradient_clip_val``.

    At the end of ``fit`` it writes ``generated_text`` (a W&B table and a Markdown file) with
    :meth:`generate` for ``sample_prefixes``; ``predict`` batches ``{"prefix": [str, ...]}``
    return ``{"prefix", "text"}`` per prefix.

    Text goes through the ``encode``/``decode`` of the attached data module, whose vocabulary
    Lightning keeps in every checkpoint.

    Args:
        vocab_size: tokens in the vocabulary; the ``lightning-gru`` command links it from the
            data module.
        encoder: ``"gru"``, ``"lstm"`` or ``"rnn"``.
        hidden_size: hidden units.
        num_layers: stacked layers.
        embedding_dim: ``None`` for one-hot inputs (d2l), otherwise an embedding size.
        dropout: dropout between layers and before the head.
        reset_after: GRU cell variant (see :class:`lightning_gru.nn.GRU`).
        backend: GRU kernel (see :class:`lightning_gru.nn.GRU`).
        init_std: ``None`` keeps PyTorch's initialisation; a number draws the weights from
            ``N(0, init_std**2)`` and zeroes the biases (d2l's models from scratch: 0.01).
        carry_state: carry the hidden state across batches; ``None`` decides from the data
            module's ``partition`` (``"sequential"`` carries).
        sample_prefixes: prefixes for the text generated at the end of ``fit``.
        num_generate: tokens generated after each prefix (there and in ``predict``).
        optimizer: builds the optimizer from the parameters (d2l: SGD with ``lr=1``).
        lr_scheduler: builds a learning-rate scheduler from the optimizer; ``None`` for none.

    >>> import os
    >>> import tempfile
    >>> import lightning as L
    >>> from lightning_gru.data import TimeMachineDataModule
    >>> root = tempfile.mkdtemp()
    >>> text_file = os.path.join(root, "text.txt")
    >>> with open(text_file, "w", encoding="utf-8") as f:
    ...     _ = f.write("The Time Traveller (for so it will be convenient to speak of him)\\n" * 20)
    >>> data = TimeMachineDataModule(text_file, batch_size=4, num_steps=10, cache_dir=root)
    >>> _ = L.seed_everything(0, verbose=False)
    >>> model = LanguageModel(vocab_size=data.vocab_size, hidden_size=16, num_generate=5)
    >>> trainer = L.Trainer(max_epochs=1, limit_train_batches=2, accelerator="cpu",
    ...     default_root_dir=root, logger=False, enable_checkpointing=False,
    ...     enable_progress_bar=False, enable_model_summary=False)
    >>> trainer.fit(model, data)
    >>> sorted(trainer.callback_metrics)
    ['train_loss_epoch', 'train_ppl', 'train_tokens_per_sec', 'val_loss', 'val_ppl']
    >>> text = model.generate("time traveller", 10)  # 10 more characters
    >>> len(text), text.startswith("time traveller")
    (24, True)
    >>> os.path.isfile(os.path.join(root, "generated_text.md"))
    True
    """

    def __init__(
        self,
        vocab_size: int = 28,
        encoder: Encoder = "gru",
        hidden_size: int = 256,
        num_layers: int = 1,
        embedding_dim: int | None = None,
        dropout: float = 0.0,
        reset_after: bool = True,
        backend: Backend = "auto",
        init_std: float | None = None,
        carry_state: bool | None = None,
        sample_prefixes: list[str] | None = None,
        num_generate: int = 50,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        check_texts("sample_prefixes", sample_prefixes)
        check_at_least(0, num_generate=num_generate)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.net = LanguageModelNet(
            vocab_size,
            encoder,
            hidden_size,
            num_layers,
            embedding_dim,
            dropout,
            reset_after,
            backend,
            init_std,
        )
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.sample_prefixes = (
            ["time traveller", "traveller"] if sample_prefixes is None else sample_prefixes
        )
        # the epoch's loss x tokens and tokens: their ratio's exp is the training perplexity; a
        # NaN loss makes it NaN (not dropped). (MeanMetric with nan_strategy="disable" drops
        # its weights: Lightning-AI/torchmetrics#3434.)
        self.train_loss_sum = SumMetric(nan_strategy="disable")
        self.train_tokens = SumMetric(nan_strategy="disable")
        self.val_ppl, self.test_ppl = Perplexity(), Perplexity()
        self.throughput = Throughput()
        self._state: dict[str, State] = {}

    def forward(self, ids: Tensor, state: State = None) -> tuple[Tensor, State]:
        """See :meth:`LanguageModelNet.forward`."""
        return self.net(ids, state)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def predict_step(self, batch: dict[str, list[str]], batch_idx: int) -> list[dict[str, str]]:
        """``num_generate`` tokens after each prefix of the batch."""
        num = self.hparams.num_generate
        return [{"prefix": p, "text": self.generate(p, num)} for p in batch["prefix"]]

    def configure_optimizers(self) -> Any:
        return build_optimizers(self, self.optimizer, self.lr_scheduler)

    def on_fit_start(self) -> None:
        super().on_fit_start()  # the vocabulary, final now: a checkpoint's, if one is restored
        tokenizer = self._datamodule()
        if hasattr(tokenizer, "encode"):  # refused now, not after the last epoch
            check_prefix = getattr(tokenizer, "check_prefix", None)  # the time machine's
            for prefix in self.sample_prefixes:
                if not tokenizer.encode(prefix):
                    raise ValueError(
                        f"sample_prefixes: {prefix!r} holds no token of the vocabulary; "
                        "generate needs a prefix of at least one token"
                    )
                if check_prefix is not None:
                    check_prefix(prefix, "sample_prefixes")

    def on_train_epoch_start(self) -> None:
        self.throughput.reset()
        self.train_loss_sum.reset()  # an epoch cut short was never logged, so never reset
        self.train_tokens.reset()
        self._state["train"] = None

    def on_validation_epoch_start(self) -> None:
        self._state["val"] = None

    def on_test_epoch_start(self) -> None:
        self._state["test"] = None

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.throughput.start()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.throughput.stop(batch[0].numel())  # the step: forward, backward, optimizer
        if self.trainer.is_last_batch:
            self._log_training_epoch()

    def on_train_epoch_end(self) -> None:
        self.log("train_tokens_per_sec", self.throughput.rate())

    def on_fit_end(self) -> None:
        if self.sample_prefixes and hasattr(self._datamodule(), "encode"):
            rows = [[p, self.generate(p, self.hparams.num_generate)] for p in self.sample_prefixes]
            log_table(self.trainer, "generated_text", ["prefix", "text"], rows)

    @torch.no_grad()
    def generate(self, prefix: str, num_tokens: int, tokenizer: Any = None) -> str:
        """``prefix`` followed by ``num_tokens`` greedily predicted tokens (d2l's ``predict``).

        The prefix is read first (its last token's prediction starts the output), then each
        predicted token is fed back.

        Args:
            prefix: the text to continue; it must hold at least one token.
            num_tokens: how many tokens to add.
            tokenizer: anything with ``encode(str) -> list[int]`` and ``decode(ids) -> str``,
                and optionally ``separator``, the text between two tokens (a
                :class:`~lightning_gru.data.TimeMachineDataModule`: nothing between
                characters, a space between words); ``None`` uses the data module of the
                Trainer this model is attached to. A tokenizer with a ``vocab_size`` smaller
                than the model's limits the prediction to its tokens (the ids below it).
        """
        check_at_least(0, num_tokens=num_tokens)
        tokenizer = tokenizer if tokenizer is not None else self._datamodule()
        if not hasattr(tokenizer, "encode"):
            raise ValueError("generate needs a tokenizer (a data module with encode and decode)")
        known = getattr(tokenizer, "vocab_size", None)  # the model's spare units have no text
        if known is not None and known > self.hparams.vocab_size:
            raise ValueError(
                f"the tokenizer's vocabulary of {known} tokens is larger than the model's "
                f"vocab_size={self.hparams.vocab_size}: generate with the tokenizer (data "
                "module) the model was trained with"
            )
        prefix_ids = tokenizer.encode(prefix)
        if not prefix_ids:
            raise ValueError(f"generate needs a prefix of at least one token, got {prefix!r}")
        if max(prefix_ids) >= self.hparams.vocab_size:
            raise ValueError(
                f"the tokenizer gives {prefix!r} the id {max(prefix_ids)}, past the model's "
                f"vocab_size={self.hparams.vocab_size}: generate with the tokenizer (data "
                "module) the model was trained with"
            )
        was_training = self.training
        self.eval()
        try:
            logits, state = self(torch.tensor([prefix_ids], device=self.device))  # (1, T)
            out: list[int] = []
            for _ in range(num_tokens):
                next_id = int(logits[0, -1, :known].argmax())
                out.append(next_id)
                logits, state = self(torch.tensor([[next_id]], device=self.device), state)
        finally:
            self.train(was_training)
        if not out:
            return prefix
        separator = getattr(tokenizer, "separator", "")
        return prefix.rstrip(separator) + separator + tokenizer.decode(out)

    def _shared_step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        X, Y = batch  # (B, T) each
        state = self._state.get(stage) if self._carry_state() else None
        if state is not None and _batch_size(state) != len(X):
            state = None  # a shorter last batch continues nothing
        logits, state = self(X, state)  # (B, T, V)
        self._state[stage] = _detach(state)
        # time-major rows, as the logits are stored: no copy of them
        loss = F.cross_entropy(logits.transpose(0, 1).flatten(0, 1), Y.T.flatten())
        if stage == "train":
            self._log_training(loss, Y.numel())
            return loss
        ppl = getattr(self, f"{stage}_ppl")
        # an epoch value (the per-batch one is not needed); in float64, as torchmetrics takes the
        # log of a softmax, where a target probability below float32's least (~1e-45) reads 0
        ppl.update(logits.detach().double(), Y)
        self.log(f"{stage}_loss", loss, on_epoch=True, prog_bar=True, batch_size=len(X))
        self.log(f"{stage}_ppl", ppl, on_epoch=True, prog_bar=True)
        return loss

    def _log_training(self, loss: Tensor, tokens: int) -> None:
        # Each self.log call costs ~1 ms in Lightning 2.6 (Lightning-AI/pytorch-lightning#20388),
        # ~5% of a time-machine step, and torchmetrics' Perplexity.update 0.2 ms: the step value
        # is logged only where the logger writes it, and the epoch's come from a running mean
        # of the loss (see on_train_batch_end).
        self.train_loss_sum.update(loss.detach() * tokens)
        self.train_tokens.update(tokens)
        trainer = self._trainer
        every = trainer.log_every_n_steps if trainer is not None else 0
        if every > 0 and (trainer.global_step + 1) % every == 0:
            self.log("train_loss_step", loss, prog_bar=True)

    def _log_training_epoch(self) -> None:
        # Logged with the last batch, not at the epoch's end: callbacks (learning curves,
        # checkpoints) read an epoch's metrics in on_train_epoch_end, before the module's own.
        mean_loss = self.train_loss_sum.compute() / self.train_tokens.compute()
        self.log("train_loss_epoch", mean_loss, on_step=False, on_epoch=True)
        self.log("train_ppl", mean_loss.exp(), on_step=False, on_epoch=True, prog_bar=True)

    def _carry_state(self) -> bool:
        if self.hparams.carry_state is not None:
            return self.hparams.carry_state
        return getattr(self._datamodule(), "partition", "random") == "sequential"

    def _datamodule(self) -> Any:
        return getattr(self._trainer, "datamodule", None) if self._trainer else None


def _detach(state: State) -> State:
    if isinstance(state, tuple):  # LSTM: (h, c)
        return tuple(s.detach() for s in state)
    return None if state is None else state.detach()


def _batch_size(state: Tensor | tuple[Tensor, Tensor]) -> int:
    return (state[0] if isinstance(state, tuple) else state).shape[1]
