"""H. G. Wells' *The Time Machine* for character (or word) language modelling, as in d2l.

The text is read with ``datasets.load_dataset("text", ...)`` and processed exactly as Dive into
Deep Learning (0.x) does: per line, every run of non-letters becomes one space, then strip and
lowercase; tokens are the characters (or the words) of the lines, joined without separators.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_gru._checks import check_at_least, check_texts
from lightning_gru.data._common import (
    DataConfigError,
    DataFileError,
    adopt_checkpoint_settings,
    check_fraction,
    check_limit,
    check_one_process,
    check_seed,
    existing_file,
    fetch,
    load_local_files,
    warn_vocabulary_from_data,
)
from lightning_gru.data.samplers import EpochBatchSampler, at_trainer_epoch
from lightning_gru.data.vocab import Vocab

D2L_TIME_MACHINE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
_NON_LETTERS = re.compile("[^A-Za-z]+")
_TOKENS = ("char", "word")
_PARTITIONS = ("random", "sequential")


def preprocess_line(line: str) -> str:
    """d2l's ``read_time_machine`` step for one line.

    Example:
        >>> preprocess_line("  The Time Machine, by H. G. Wells [1898]\\n")
        'the time machine by h g wells'
    """
    return _NON_LETTERS.sub(" ", line).strip().lower()


class TimeMachineDataModule(L.LightningDataModule):
    """*The Time Machine* as minibatches of token ids and next-token targets.

    The corpus is the whole text as ids (170,580 characters for the d2l file, vocabulary of 28:
    ``<unk>``, space and 26 letters, ordered by falling frequency with ties in order of first
    appearance, as d2l's ``Vocab``). Like d2l, the vocabulary is built from the whole text.

    Splits: validation is the last ``val_fraction`` of the full corpus. Training uses the text
    before it, limited to its first ``max_tokens`` tokens when ``max_tokens > 0`` (d2l keeps
    10,000); ``-1`` keeps it all. So ``max_tokens`` shrinks only the training text, and the
    validation tail is text the model never trains on, whatever ``max_tokens`` is.

    Training batches are tuples ``(X, Y)`` of int64 (``batch_size``, ``num_steps``), ``Y`` being
    ``X`` shifted by one token, partitioned as d2l does:

    - ``"random"``: each epoch starts at a random offset in ``[0, num_steps)`` and visits the
      subsequences in random order; neighbouring batches are unrelated, so reset the hidden
      state for every batch.
    - ``"sequential"``: each epoch starts at a random offset in ``[0, num_steps]`` and lays the
      corpus out as ``batch_size`` rows; row ``i`` of batch ``k + 1`` continues row ``i`` of
      batch ``k``, so a model can carry (and detach) its hidden state from batch to batch.

    Every epoch yields the same number of batches (that of the least favourable offset); the
    randomness depends only on ``seed`` and the epoch. Validation batches use the same layout
    at offset 0, in order. Predict batches are dicts ``{"prefix": [str, ...]}`` of
    ``predict_prefixes``; encode them with :meth:`encode`.

    Args:
        data_file: a local plain-text file; ``None`` downloads ``url``.
        url: the plain-text copy to download (d2l's by default), once: later runs read the
            copy in the ``datasets`` cache.
        token: ``"char"`` or ``"word"`` tokens.
        max_tokens: keep the first ``max_tokens`` training tokens; ``-1`` keeps all.
        partition: ``"random"`` or ``"sequential"`` minibatches.
        batch_size: subsequences per batch.
        num_steps: tokens per subsequence.
        val_fraction: the share of the corpus (its end) held out for validation.
        num_workers: ``DataLoader`` worker processes.
        seed: the seed of offsets and orders.
        predict_prefixes: prompts to continue with ``Trainer.predict``.
        cache_dir: the ``datasets`` cache folder; ``None`` uses ``HF_DATASETS_CACHE``.

    Example:
        >>> import shutil, tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> path = folder / "timemachine.txt"
        >>> _ = path.write_text("The Time Machine, by H. G. Wells\\n\\nThe Time Traveller\\n")
        >>> # real text: data_file="../shared/data/timemachine/timemachine.txt"; None downloads it
        >>> dm = TimeMachineDataModule(data_file=str(path), cache_dir=str(folder / "cache"),
        ...     batch_size=2, num_steps=5)
        >>> dm.setup("fit")
        >>> dm.vocab_size, len(dm.train_corpus), len(dm.val_corpus)
        (18, 42, 5)
        >>> X, Y = next(iter(dm.train_dataloader()))
        >>> X.shape, X.dtype, bool((X[:, 1:] == Y[:, :-1]).all())
        (torch.Size([2, 5]), torch.int64, True)
        >>> dm.decode(dm.encode("time traveller"))
        'time traveller'
        >>> shutil.rmtree(folder)
    """

    def __init__(
        self,
        data_file: str | None = None,
        url: str = D2L_TIME_MACHINE_URL,
        token: str = "char",
        max_tokens: int = 10000,
        partition: str = "random",
        batch_size: int = 32,
        num_steps: int = 35,
        val_fraction: float = 0.1,
        num_workers: int = 0,
        seed: int = 42,
        predict_prefixes: list[str] | None = None,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        if token not in _TOKENS:
            raise ValueError(f"token must be one of {_TOKENS}, got {token!r}")
        if partition not in _PARTITIONS:
            raise ValueError(f"partition must be one of {_PARTITIONS}, got {partition!r}")
        check_fraction("val_fraction", val_fraction)
        check_limit("max_tokens", max_tokens)
        check_at_least(1, batch_size=batch_size, num_steps=num_steps)
        check_at_least(0, num_workers=num_workers)
        check_seed("seed", seed)
        check_texts("predict_prefixes", predict_prefixes)
        self.save_hyperparameters()
        self.data_file = data_file
        self.url = url
        self.token = token
        self.max_tokens = max_tokens
        self.partition = partition
        self.batch_size = batch_size
        self.num_steps = num_steps
        self.val_fraction = val_fraction
        self.num_workers = num_workers
        self.seed = seed
        self.predict_prefixes = predict_prefixes
        self.cache_dir = cache_dir
        self.vocab: Vocab | None = None
        self.train_corpus: np.ndarray | None = None
        self.val_corpus: np.ndarray | None = None

    # -- Lightning hooks ---------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Download (or read) the text into the ``datasets`` cache."""
        if self.trainer is not None and self.trainer.predicting:
            return  # the vocabulary comes from the checkpoint
        self._read_lines()

    def setup(self, stage: str | None = None) -> None:
        """Build the vocabulary and the corpora, and check that the texts the stage reads hold
        a batch: the training text for ``fit``, the validation text for ``validate`` and, with
        a trainer that validates (``limit_val_batches`` not 0), for ``fit``. (The loaders check
        again: ``batch_size`` may change after ``setup``, as the batch-size finder changes it.)
        ``predict`` only checks the prefixes (it runs before Lightning restores the vocabulary
        from a checkpoint)."""
        check_one_process(self)
        if stage == "predict":
            self._prefixes()
            return
        train, val = self._corpora()
        if stage in (None, "fit"):
            self._batches(train, shuffle=True)
        if not len(val) or stage not in (None, "fit", "validate"):
            return
        if self.trainer is not None:
            validates = self.trainer.limit_val_batches != 0
        else:  # (a fit without a trainer may never read it: its loader checks then)
            validates = stage == "validate"
        if validates:
            self._batches(val, shuffle=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._corpora()[0], shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        val = self._corpora()[1]
        return self._loader(val, shuffle=False) if len(val) else []

    def predict_dataloader(self) -> DataLoader:
        prefixes = self._prefixes()  # (each holds a letter: a token of any vocabulary)
        warn_vocabulary_from_data(self)
        self._vocab()  # a checkpoint's, restored by now, or built from the text (warned above)
        return DataLoader(prefixes, batch_size=self.batch_size, collate_fn=_collate_prefixes)

    def state_dict(self) -> dict[str, Any]:
        """The vocabulary and the token kind."""
        if self.vocab is None:
            return {}
        return {"token": self.token, "vocab": self.vocab.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved; the checkpoint's token kind wins (with a
        warning where it differs)."""
        if not state_dict:
            return
        if state_dict["token"] not in _TOKENS:
            raise ValueError(
                f"checkpoint token must be one of {_TOKENS}, got {state_dict['token']!r}"
            )
        vocab = Vocab.from_state_dict(state_dict["vocab"])
        if adopt_checkpoint_settings(self, {"token": state_dict["token"]}) or vocab != self.vocab:
            self.train_corpus = self.val_corpus = None
        self.vocab = vocab

    # -- public helpers ----------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """The vocabulary size; reads the text if the vocabulary is not built yet."""
        return len(self._vocab())

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` after d2l's cleaning (lowercase, non-letters to one space); unlike
        whole lines, ``text`` is not stripped, so a trailing space is kept.

        Example:
            >>> dm = TimeMachineDataModule()
            >>> dm.load_state_dict({"token": "char",
            ...     "vocab": {"idx_to_token": ["<unk>", " ", "e", "t"], "unk_token": "<unk>"}})
            >>> dm.encode("Tee-t!"), dm.decode([3, 2, 1, 0])
            ([3, 2, 2, 1, 3, 1], 'te <unk>')
        """
        text = _NON_LETTERS.sub(" ", text).lower()
        return self._vocab().lookup(text if self.token == "char" else text.split())

    @property
    def separator(self) -> str:
        """What goes between two tokens in text: nothing between characters, a space between
        words."""
        return "" if self.token == "char" else " "

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids`` (characters joined, or words joined by spaces)."""
        return self.separator.join(self._vocab().to_tokens(ids))

    # -- internals ---------------------------------------------------------------------------

    def _read_lines(self) -> list[str]:
        if self.data_file is None:
            path = fetch(
                f"{self.url!r}",
                "pass data_file= a local copy of the text to load it instead (on the command "
                "line --data.data_file, or the overlay recipes/language_model/local-data.yaml)",
                self._download,
            )
            source = f"{self.url} (downloaded to {path})"
        else:
            path = source = str(existing_file(self.data_file, "data_file"))
        dataset = load_local_files("text", [path], self.cache_dir, source)
        lines = dataset.data.table.column("text").to_pylist()
        if not any(_NON_LETTERS.sub("", line) for line in lines):
            raise DataFileError(f"{source}: the text has no letters (empty file?)")
        return lines

    def _download(self) -> str:
        """The path of the copy of ``url`` in the ``downloads`` folder of the ``datasets`` cache,
        downloaded if absent. Like ``datasets`` does for data files, the copy is keyed by the
        URL alone (no ETag), so once it is there it is used without asking the server, online
        or offline."""
        import datasets

        downloads = datasets.config.DOWNLOADED_DATASETS_DIR
        cache = None if self.cache_dir is None else Path(self.cache_dir).expanduser() / downloads
        config = datasets.DownloadConfig(cache_dir=cache, use_etag=False)
        return datasets.DownloadManager(download_config=config).download(self.url)

    def _build(self) -> None:
        lines = [preprocess_line(line) for line in self._read_lines()]
        tokens = [t for line in lines for t in (line if self.token == "char" else line.split())]
        if self.vocab is None:
            self.vocab = Vocab(Counter(tokens).items(), reserved_tokens=["<unk>"])
        corpus = np.asarray(self.vocab.lookup(tokens), dtype=np.int64)
        n_val = round(len(corpus) * self.val_fraction)
        if self.val_fraction > 0 and n_val == 0:
            raise DataConfigError(
                f"val_fraction={self.val_fraction} of the {len(corpus)} tokens holds out none to "
                "validate: raise it, or pass val_fraction=0 to train without validation"
            )
        train, self.val_corpus = corpus[: len(corpus) - n_val], corpus[len(corpus) - n_val :]
        self.train_corpus = train[: self.max_tokens] if self.max_tokens > 0 else train

    def _vocab(self) -> Vocab:
        if self.vocab is None:
            self._build()
        assert self.vocab is not None
        return self.vocab

    def _corpora(self) -> tuple[np.ndarray, np.ndarray]:
        if self.train_corpus is None:
            self._build()
        return self.train_corpus, self.val_corpus  # type: ignore[return-value]

    def _prefixes(self) -> list[str]:
        if not self.predict_prefixes:
            raise DataConfigError("TimeMachineDataModule needs predict_prefixes to predict")
        if "" in self.predict_prefixes:
            raise DataConfigError("predict_prefixes holds an empty prefix: a prefix needs a token")
        for prefix in self.predict_prefixes:
            self.check_prefix(prefix)
        return list(self.predict_prefixes)

    def check_prefix(self, prefix: str, name: str = "predict_prefixes") -> None:
        """A ``DataConfigError`` for a non-empty prefix without a letter: the text is read as
        lowercase letters and spaces (d2l's cleaning), so ``"42!"`` would reach the model as
        one space, which it would continue as if it were the prefix.

        Example:
            >>> TimeMachineDataModule().check_prefix("42!")
            Traceback (most recent call last):
                ...
            lightning_gru.data._common.DataConfigError: predict_prefixes: '42!' holds no letter; ...
        """
        if prefix and not _NON_LETTERS.sub(" ", prefix).strip():
            raise DataConfigError(
                f"{name}: {prefix!r} holds no letter; the text is read as letters and spaces "
                "only (d2l's cleaning), so the model would continue a space"
            )

    def _loader(self, corpus: np.ndarray, shuffle: bool) -> DataLoader:
        sampler = self._batches(corpus, shuffle)
        if shuffle:  # training
            sampler = at_trainer_epoch(sampler, self.trainer)
        return DataLoader(
            _Subsequences(corpus, self.num_steps),
            batch_sampler=sampler,
            num_workers=self.num_workers,
        )

    def _batches(self, corpus: np.ndarray, shuffle: bool) -> SubsequenceBatchSampler:
        """The batch sampler of the training (``shuffle``) or validation text; a
        ``DataConfigError`` that names the text when it holds no batch."""
        try:
            return SubsequenceBatchSampler(
                len(corpus), self.batch_size, self.num_steps, self.partition, shuffle, self.seed
            )
        except ValueError as err:
            if shuffle:
                raise DataConfigError(f"the training text: {err}") from None
            raise DataConfigError(
                f"the validation text (the last val_fraction={self.val_fraction} of the tokens): "
                f"{err}, or raise val_fraction (0 validates nothing)"
            ) from None


class SubsequenceBatchSampler(EpochBatchSampler):
    """Start positions of d2l's minibatches: ``batch_size`` subsequences of ``num_steps`` tokens.

    Args:
        num_tokens: the corpus length.
        batch_size: subsequences per batch.
        num_steps: tokens per subsequence.
        partition: ``"random"`` or ``"sequential"`` (see :class:`TimeMachineDataModule`).
        shuffle: draw the offset (and, for ``"random"``, the order); ``False`` uses offset 0
            and the corpus order.
        seed: the seed of every pass.

    Example:
        >>> list(SubsequenceBatchSampler(21, 2, 3, "sequential", shuffle=False))
        [[0, 10], [3, 13], [6, 16]]
    """

    def __init__(
        self,
        num_tokens: int,
        batch_size: int,
        num_steps: int,
        partition: str = "random",
        shuffle: bool = True,
        seed: int = 42,
    ) -> None:
        super().__init__(seed)
        if partition not in _PARTITIONS:
            raise ValueError(f"partition must be one of {_PARTITIONS}, got {partition!r}")
        self.num_tokens, self.batch_size, self.num_steps = num_tokens, batch_size, num_steps
        self.partition, self.shuffle = partition, shuffle
        if len(self) == 0:
            raise ValueError(
                f"{num_tokens} tokens are too few for one batch of batch_size={batch_size} "
                f"x num_steps={num_steps} ({partition} partition); lower them or use more text"
            )

    def _max_offset(self) -> int:
        if not self.shuffle:
            return 0
        return self.num_steps - 1 if self.partition == "random" else self.num_steps

    def _num_batches(self, offset: int) -> int:
        usable = self.num_tokens - offset - 1  # the last token is only a target
        if self.partition == "random":
            return usable // self.num_steps // self.batch_size
        return usable // self.batch_size // self.num_steps

    def __len__(self) -> int:
        return max(self._num_batches(self._max_offset()), 0)

    def batches(self, rng: np.random.Generator) -> list[list[int]]:
        B, T, n_batches = self.batch_size, self.num_steps, len(self)
        offset = int(rng.integers(0, self._max_offset() + 1)) if self.shuffle else 0
        if self.partition == "random":
            starts = offset + T * np.arange((self.num_tokens - offset - 1) // T)
            if self.shuffle:
                starts = rng.permutation(starts)
            return starts[: n_batches * B].reshape(n_batches, B).tolist()
        row_len = (self.num_tokens - offset - 1) // B  # each row is a contiguous stretch
        rows = offset + row_len * np.arange(B)  # (B,)
        return [(rows + k * T).tolist() for k in range(n_batches)]


class _Subsequences(Dataset):
    """``corpus[s : s + num_steps]`` and its next-token targets for a start position ``s``."""

    def __init__(self, corpus: np.ndarray, num_steps: int) -> None:
        self.corpus = torch.as_tensor(corpus, dtype=torch.long)
        self.num_steps = num_steps

    def __len__(self) -> int:
        return max(len(self.corpus) - self.num_steps, 0)

    def __getitem__(self, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        end = start + self.num_steps
        return self.corpus[start:end], self.corpus[start + 1 : end + 1]


def _collate_prefixes(prefixes: list[str]) -> dict[str, list[str]]:
    return {"prefix": list(prefixes)}
