"""Review sentiment: embedding, recurrent encoder (or bag of words), linear head."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)
from tqdm.auto import tqdm

from lightning_gru._checks import check_texts
from lightning_gru.models._common import (
    PlateauCheck,
    Throughput,
    VocabularyCheck,
    build_optimizers,
)
from lightning_gru.models.figures import log_figure, plot_confusion_matrix
from lightning_gru.nn.baselines import (
    Backend,
    BagOfWords,
    check_lengths,
    final_state,
    make_encoder,
)

__all__ = [
    "SentimentClassifier",
    "SentimentNet",
    "load_word_vectors",
    "pad_packed_rows",
    "pool_outputs",
    "pool_packed",
]

Pooling = Literal["last", "max", "mean", "max_mean"]
POOLINGS = get_args(Pooling)


class SentimentNet(nn.Module):
    """Padded token ids and lengths to class logits.

    The recurrent encoders read a ``PackedSequence`` (or, with ``packed=False``, the padded
    batch in one direction), so padding never reaches what feeds the head: with
    ``pooling="last"`` the last layer's final state (both directions when bidirectional),
    otherwise the maximum and/or mean of the last layer's outputs over the real time steps
    (:func:`pool_outputs`). ``bow`` averages the embeddings of the real tokens instead.

    Args:
        vocab_size: rows of the embedding.
        embedding_dim: embedding size ``E``.
        encoder: ``"gru"``, ``"lstm"``, ``"rnn"`` or ``"bow"``.
        hidden_size: hidden units per direction.
        num_layers: stacked layers.
        bidirectional: read the review both ways.
        dropout: on the embeddings, between layers and before the head.
        num_classes: outputs of the head.
        padding_idx: the padding id (its embedding stays zero).
        reset_after: GRU cell variant (see :class:`lightning_gru.nn.GRU`).
        backend: GRU kernel (see :class:`lightning_gru.nn.GRU`).
        pooling: what feeds the head: ``"last"`` (the final state), ``"max"``, ``"mean"`` or
            ``"max_mean"`` (both, concatenated) of the outputs over time.
        packed: feed the encoder a ``PackedSequence`` (default). ``False`` feeds it the padded
            batch instead, one direction only: the outputs up to each review's length are the
            same (the padding comes after them), the pooling and ``"last"`` read only those, and
            torch's CPU LSTM and RNN train many times faster on padded than on packed batches
            (our GRU is fast on both).

    >>> net = SentimentNet(100, 8, "gru", hidden_size=16, bidirectional=True)
    >>> net(torch.randint(1, 100, (3, 7)), torch.tensor([7, 2, 5])).shape
    torch.Size([3, 2])
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 100,
        encoder: Literal["gru", "lstm", "rnn", "bow"] = "gru",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        num_classes: int = 2,
        padding_idx: int = 0,
        reset_after: bool = True,
        backend: Backend = "auto",
        pooling: Pooling = "last",
        packed: bool = True,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if vocab_size < 1:  # (torch would fail in the embedding's initialisation)
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if embedding_dim < 1:  # (the encoder would name it input_size)
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if not packed and bidirectional and encoder != "bow":
            raise ValueError(
                "packed=False needs bidirectional=False: the reverse direction of a padded "
                "batch would start in the padding"
            )
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.packed = packed
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        if encoder == "bow":
            self.encoder: nn.Module = BagOfWords()
            features = embedding_dim
        else:
            self.encoder = make_encoder(
                encoder,
                embedding_dim,
                hidden_size,
                num_layers,
                dropout,
                bidirectional,
                reset_after=reset_after,
                backend=backend,
            )
            features = hidden_size * (2 if bidirectional else 1)
            features *= 2 if pooling == "max_mean" else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(features, num_classes)

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        """``(B, T)`` ids padded after the ``(B,)`` lengths to ``(B, C)`` logits (an empty
        sequence, length 0, is read as its first padding token)."""
        if input_ids.dim() != 2:
            raise ValueError(
                f"expected (batch, time) token ids, got shape {tuple(input_ids.shape)}"
            )
        x = self.dropout(self.embedding(input_ids))  # (B, T, E)
        if isinstance(self.encoder, BagOfWords):
            h = self.encoder(x, lengths)  # (B, E); it checks the lengths
        else:
            check_lengths(lengths, *input_ids.shape)
            lengths = lengths.detach().cpu().clamp(min=1)
            if self.packed:
                packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                output, h_n = self.encoder(packed)  # h_n (L * D, B, H) or (h_n, c_n)
                if self.pooling == "last":
                    h = final_state(h_n, self.bidirectional)  # (B, D * H)
                else:
                    h = pool_packed(output, lengths, self.pooling)  # (B, D * H) or (B, 2 D H)
            else:
                output, _ = self.encoder(x)  # (B, T, H); its h_n would have read the padding
                if self.pooling == "last":
                    h = output[torch.arange(len(lengths)), lengths.to(output.device) - 1]
                else:
                    h = pool_outputs(output, lengths, self.pooling)  # (B, H) or (B, 2 * H)
        return self.head(self.dropout(h))  # (B, C)


def _packed_rows(sequence: PackedSequence) -> tuple[Tensor, Tensor]:
    """For each row of ``sequence.data``, its sequence's position in the batch as given and its
    step, both ``(N,)`` on the CPU."""
    batch_sizes = sequence.batch_sizes  # (T,) on the CPU
    steps = torch.repeat_interleave(torch.arange(batch_sizes.shape[0]), batch_sizes)
    starts = torch.cumsum(batch_sizes, 0) - batch_sizes  # first row of each step
    position = torch.arange(steps.shape[0]) - starts[steps]  # in the sorted batch
    if sequence.sorted_indices is not None:
        position = sequence.sorted_indices.cpu()[position]
    return position, steps


def pad_packed_rows(sequence: PackedSequence, padding_value: float = 0.0) -> Tensor:
    """``pad_packed_sequence(sequence, batch_first=True, padding_value=...)[0]``: the same
    ``(B, T, F)`` tensor, built by one scatter of the rows, whose gradient is one gather.

    torch's copies each run of steps with the same batch size into a slice of the result, and
    its backward then copies the whole gradient once per run: on IMDb batches (reviews of many
    lengths) ~100 ms of a 500 ms training step, for either GRU.

    >>> from torch.nn.utils.rnn import pack_sequence
    >>> packed = pack_sequence([torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0]])])
    >>> pad_packed_rows(packed)[..., 0]
    tensor([[1., 2.],
            [3., 0.]])
    """
    return _padded(sequence, *_packed_rows(sequence), padding_value)


def _padded(
    sequence: PackedSequence, position: Tensor, steps: Tensor, padding_value: float
) -> Tensor:
    """:func:`pad_packed_rows`, its rows' positions and steps given (:func:`_packed_rows`)."""
    data = sequence.data  # (N, F)
    T, B, width = sequence.batch_sizes.shape[0], int(sequence.batch_sizes[0]), data.shape[1]
    destination = (position * T + steps).to(data.device)  # row of the (B * T, F) result
    padded = data.new_full((B * T, width), padding_value).index_put((destination,), data)
    return padded.view(B, T, width)


def pool_packed(output: PackedSequence, lengths: Tensor, pooling: Pooling) -> Tensor:
    """:func:`pool_outputs` of the sequences of a ``PackedSequence`` (``lengths`` in the order
    the batch was given), the same numbers: the maximum of each sequence's rows, reduced into
    its row of the result (no padded copy); the mean over its rows padded with zeros. No mask
    to apply, so no copy of the padded outputs (each such copy, and its gradient's, took ~30 ms
    of an IMDb training step).

    >>> from torch.nn.utils.rnn import pack_sequence
    >>> packed = pack_sequence([torch.tensor([[1.0], [3.0]]), torch.tensor([[-2.0]])])
    >>> pool_packed(packed, torch.tensor([2, 1]), "max_mean")
    tensor([[ 3.,  2.],
            [-2., -2.]])
    """
    if pooling not in ("max", "mean", "max_mean"):
        raise ValueError(f"pool_packed pools by max, mean or max_mean, not {pooling!r}")
    data = output.data  # (N, F)
    position, steps = _packed_rows(output)
    pooled = []
    if pooling in ("max", "max_mean"):
        rows = position.to(data.device)[:, None].expand_as(data)
        start = data.new_full((int(output.batch_sizes[0]), data.shape[1]), float("-inf"))
        pooled.append(start.scatter_reduce(0, rows, data, "amax"))  # (B, F)
    if pooling in ("mean", "max_mean"):
        divisor = lengths.to(data.device)[:, None].to(data.dtype)
        pooled.append(_padded(output, position, steps, 0.0).sum(1) / divisor)  # (B, F)
    return pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=-1)


def pool_outputs(output: Tensor, lengths: Tensor, pooling: Pooling) -> Tensor:
    """The maximum (``max``), the mean (``mean``) or both (``max_mean``) of a padded
    ``(B, T, F)`` output over the first ``lengths`` steps of each row; whatever the padding
    holds enters neither.

    >>> out = torch.tensor([[[1.0], [3.0]], [[2.0], [9.0]]])  # the 9 is padding
    >>> pool_outputs(out, torch.tensor([2, 1]), "max_mean")
    tensor([[3., 2.],
            [2., 2.]])
    """
    lengths = lengths.to(output.device)
    steps = torch.arange(output.shape[1], device=output.device)
    padding = (steps[None, :] >= lengths[:, None])[..., None]  # (B, T, 1)
    mean = output.masked_fill(padding, 0.0).sum(1) / lengths[:, None].to(output.dtype)  # (B, F)
    if pooling == "mean":
        return mean
    maximum = output.masked_fill(padding, float("-inf")).amax(1)  # (B, F)
    return maximum if pooling == "max" else torch.cat([maximum, mean], dim=-1)


def load_word_vectors(
    path: str | Path, token_to_idx: Mapping[str, int], weight: Tensor, progress: bool = True
) -> int:
    """Copy the vectors of a GloVe-format text file into the rows of ``weight`` of known tokens.

    Each line is a token and its numbers, separated by spaces (a word2vec-style first line of
    two numbers is skipped); the token may hold spaces itself, as some of glove.840B's do
    (``. . .``). Rows of tokens missing from the file keep their values.

    Args:
        path: the text file (``glove.6B.100d.txt``, ...).
        token_to_idx: the vocabulary, token to row.
        weight: ``(V, E)`` embedding matrix, changed in place.
        progress: show a progress bar while reading.

    Returns:
        How many rows were set.

    Raises:
        ValueError: naming the file and the line, for a vector of a known token that does not
            have ``E`` numbers or holds one that is not a finite number (a NaN would spread to
            every weight at the first step), and for a file that is not UTF-8.

    >>> import os
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "vectors.txt")
    >>> with open(path, "w", encoding="utf-8") as f:  # a word2vec header, then GloVe lines
    ...     _ = f.write("3 2\\ngood 0.5 1.5\\nbad -1 -2\\nfilm 7 8\\n")
    >>> weight = torch.zeros(4, 2)  # rows of <pad>, <unk>, good, bad
    >>> vocab = {"<pad>": 0, "<unk>": 1, "good": 2, "bad": 3}
    >>> load_word_vectors(path, vocab, weight, progress=False)  # "film" is not in the vocabulary
    2
    >>> weight
    tensor([[ 0.0000,  0.0000],
            [ 0.0000,  0.0000],
            [ 0.5000,  1.5000],
            [-1.0000, -2.0000]])
    """
    found, width = 0, weight.shape[1]
    with open(path, encoding="utf-8") as f, torch.no_grad():
        lines = tqdm(f, desc=f"reading {Path(path).name}", unit=" lines", disable=not progress)
        try:
            for number, line in enumerate(lines, start=1):
                token, _, rest = line.rstrip("\n").partition(" ")
                values = rest.split()
                if len(values) > width and not _is_number(values[0]):  # a token with spaces
                    extra = len(values) - width
                    token, values = " ".join([token, *values[:extra]]), values[extra:]
                row = token_to_idx.get(token)
                if row is None:
                    continue
                if len(values) != width:
                    if len(values) == 1 and found == 0:  # a "count dim" header read as a token
                        continue
                    raise ValueError(
                        f"{path}: {token!r} has {len(values)} numbers, expected {weight.shape[1]}"
                    )
                vector = _finite_vector(values, f"{path}: line {number}, {token!r}")
                weight[row] = vector.to(weight.dtype)
                found += 1
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: cannot be read as UTF-8 text: {err}") from err
    return found


def _finite_vector(values: list[str], where: str) -> Tensor:
    """The numbers of ``values``; a ``ValueError`` starting with ``where`` for one that is no
    number or not finite (a NaN in the embedding would reach every weight at the first step)."""
    try:
        vector = torch.tensor([float(v) for v in values], dtype=torch.float64)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if not torch.isfinite(vector).all():
        raise ValueError(f"{where}: a value is not a finite number: {' '.join(values)}")
    return vector


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class SentimentClassifier(PlateauCheck, VocabularyCheck, L.LightningModule):
    """Classifies reviews from batches ``{"input_ids": (B, T), "lengths": (B,), "labels": (B,)}``.

    Logs ``{stage}_loss``, ``{stage}_acc`` and ``{stage}_f1`` (macro F1) for train, val and test,
    ``train_samples_per_sec``, and the confusion matrix of every validation and test epoch
    (``confusion_matrix_val.png``, ``confusion_matrix_test.png``). ``predict_step`` takes
    ``{"input_ids", "lengths", "text"}`` and returns ``{"text", "label", "probability"}`` per
    review, the probability being that of the predicted label.

    Args:
        vocab_size: rows of the embedding; the ``lightning-gru`` command links it from the data
            module.
        class_names: label names, in label order; linked from the data module as well.
        embedding_dim: embedding size.
        encoder: ``"gru"``, ``"lstm"``, ``"rnn"`` or ``"bow"`` (mean of the embeddings).
        hidden_size: hidden units per direction.
        num_layers: stacked layers.
        bidirectional: read the review both ways.
        dropout: on the embeddings, between layers and before the head.
        reset_after: GRU cell variant (see :class:`lightning_gru.nn.GRU`).
        backend: GRU kernel (see :class:`lightning_gru.nn.GRU`).
        pooling: what feeds the head (see :class:`SentimentNet`).
        packed: feed the encoder packed batches (see :class:`SentimentNet`).
        pad_index: the padding id.
        embedding_file: word vectors in GloVe's text format to start the embedding from (their
            size must be ``embedding_dim``); read at the start of ``fit`` through the data
            module's ``vocab``.
        freeze_embedding: keep the embedding fixed during training.
        optimizer: builds the optimizer from the parameters.
        lr_scheduler: builds a learning-rate scheduler from the optimizer; ``None`` for none.

    >>> import os
    >>> import tempfile
    >>> import lightning as L
    >>> from lightning_gru.data import IMDbDataModule
    >>> root = tempfile.mkdtemp()
    >>> for split in ("train", "test"):  # 10 reviews each, with the columns text and label
    ...     with open(os.path.join(root, f"{split}.csv"), "w", encoding="utf-8") as f:
    ...         _ = f.write("text,label\\n" + "a dull film,0\\na great film!,1\\n" * 5)
    >>> data = IMDbDataModule(root, val_fraction=0.2, batch_size=4, cache_dir=root,
    ...     predict_texts=["What a great film!"])
    >>> model = SentimentClassifier(vocab_size=data.vocab_size, embedding_dim=8, hidden_size=8)
    >>> trainer = L.Trainer(max_epochs=1, accelerator="cpu", default_root_dir=root, logger=False,
    ...     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    >>> trainer.fit(model, data)
    >>> sorted(key for key in trainer.callback_metrics if key.startswith("val_"))
    ['val_acc', 'val_f1', 'val_loss']
    >>> [result] = trainer.test(model, data, verbose=False)
    >>> sorted(result)
    ['test_acc', 'test_f1', 'test_loss']
    >>> [[review]] = trainer.predict(model, data)  # one batch of one review
    >>> sorted(review), review["label"] in model.class_names
    (['label', 'probability', 'text'], True)
    >>> sorted(name for name in os.listdir(root) if name.endswith(".png"))
    ['confusion_matrix_test.png', 'confusion_matrix_val.png']
    """

    def __init__(
        self,
        vocab_size: int = 25_000,
        class_names: list[str] | None = None,
        embedding_dim: int = 100,
        encoder: Literal["gru", "lstm", "rnn", "bow"] = "gru",
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        reset_after: bool = True,
        backend: Backend = "auto",
        pooling: Pooling = "last",
        packed: bool = True,
        pad_index: int = 0,
        embedding_file: str | None = None,
        freeze_embedding: bool = False,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        check_texts("class_names", class_names)
        if class_names is not None and len(class_names) < 2:
            raise ValueError(f"class_names must name at least 2 classes, got {list(class_names)}")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.class_names = list(class_names) if class_names is not None else ["neg", "pos"]
        C = len(self.class_names)
        self.net = SentimentNet(
            vocab_size,
            embedding_dim,
            encoder,
            hidden_size,
            num_layers,
            bidirectional,
            dropout,
            C,
            pad_index,
            reset_after,
            backend,
            pooling,
            packed,
        )
        self.net.embedding.weight.requires_grad_(not freeze_embedding)
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(C, average="micro"),
                "f1": MulticlassF1Score(C, average="macro"),
            }
        )
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")
        self.val_confusion = MulticlassConfusionMatrix(C)
        self.test_confusion = MulticlassConfusionMatrix(C)
        self.throughput = Throughput()
        self._word_vectors_loaded = False  # into this model's embedding, or restored over them

    def forward(self, input_ids: Tensor, lengths: Tensor) -> Tensor:
        """See :meth:`SentimentNet.forward`."""
        return self.net(input_ids, lengths)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[dict[str, Any]]:
        """Label and probability of each review in the batch."""
        probs = self(batch["input_ids"], batch["lengths"]).softmax(dim=-1)  # (B, C)
        p, labels = probs.max(dim=-1)
        texts = batch.get("text") or [None] * len(labels)
        return [
            {"text": text, "label": self.class_names[label], "probability": round(prob, 6)}
            for text, label, prob in zip(texts, labels.tolist(), p.tolist(), strict=True)
        ]

    def configure_optimizers(self) -> Any:
        return build_optimizers(self, self.optimizer, self.lr_scheduler)

    def on_fit_start(self) -> None:
        """Read ``embedding_file`` into a new model's embedding at its first ``fit``; never over
        weights it has trained or that a checkpoint gave it (restored before this hook, after
        ``setup``)."""
        super().on_fit_start()  # the vocabulary's check
        if self.hparams.embedding_file is None or self._word_vectors_loaded:
            return
        vocab = getattr(self.trainer.datamodule, "vocab", None)
        if vocab is None:
            raise RuntimeError("embedding_file needs a data module with a `vocab` (token_to_idx)")
        weight = self.net.embedding.weight
        found = load_word_vectors(self.hparams.embedding_file, vocab.token_to_idx, weight.data)
        rank_zero_info(
            f"embedding: {found} of {len(weight)} rows from {self.hparams.embedding_file}"
        )
        self._word_vectors_loaded = True

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._word_vectors_loaded = True  # the checkpoint's embedding wins over the file

    def on_train_epoch_start(self) -> None:
        self.throughput.reset()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.throughput.start()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.throughput.stop(len(batch["labels"]))

    def on_train_epoch_end(self) -> None:
        self.log("train_samples_per_sec", self.throughput.rate())

    def on_validation_epoch_end(self) -> None:
        self._log_confusion("val")

    def on_test_epoch_end(self) -> None:
        self._log_confusion("test")

    def _shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        labels = batch["labels"]
        logits = self(batch["input_ids"], batch["lengths"])  # (B, C)
        loss = F.cross_entropy(logits, labels)
        preds = logits.argmax(dim=-1)
        metrics = getattr(self, f"{stage}_metrics")
        metrics(preds, labels)
        if stage != "train":
            getattr(self, f"{stage}_confusion").update(preds, labels)
        B, on_step = len(labels), stage == "train"
        self.log(f"{stage}_loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=B)
        self.log_dict(
            metrics, on_step=False, on_epoch=True, prog_bar=stage != "train", batch_size=B
        )
        return loss

    def _log_confusion(self, stage: str) -> None:
        confusion = getattr(self, f"{stage}_confusion")
        if self.trainer.sanity_checking or not confusion.update_called:
            confusion.reset()
            return
        matrix = confusion.compute()
        confusion.reset()
        acc = matrix.diag().sum() / matrix.sum().clamp(min=1)
        epoch = f", epoch {self.current_epoch}" if stage == "val" else ""  # test: the ckpt's
        title = f"{stage}{epoch}, accuracy {acc:.4f}"
        log_figure(
            self.trainer,
            f"confusion_matrix_{stage}",
            plot_confusion_matrix(matrix, self.class_names, title),
        )
