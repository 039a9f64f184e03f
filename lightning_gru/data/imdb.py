"""IMDb movie reviews (Maas et al., 2011) as a LightningDataModule for sentiment classification.

The reviews come from the Hugging Face Hub (``stanfordnlp/imdb``) or from local files, are
tokenised once with a ``datasets`` map that is cached on disk, and are batched with length
bucketing. The vocabulary and the tokenizer settings live in the module's ``state_dict``, which
Lightning stores in every checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.nn.utils.rnn import pad_sequence
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
    read_local,
    warn_vocabulary_from_data,
)
from lightning_gru.data.samplers import BucketBatchSampler, at_trainer_epoch
from lightning_gru.data.vocab import Vocab

TOKENIZER = "imdb-words-v1"  # bump when tokenize() changes: checkpoints record it
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_SPLITS = ("train", "test")
CLASS_NAMES = ("neg", "pos")  # label 0, label 1
_FORMATS = {"parquet": "parquet", "csv": "csv", "jsonl": "json", "json": "json"}
_REVIEW_FILE = re.compile(r"(\d+)_(\d+)\.txt")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Split a review into word and punctuation tokens.

    The HTML line breaks of the IMDb texts (``<br />``) become spaces; a token is then either a
    run of word characters with inner apostrophes (``don't``, ``90s``, ``café``) or one
    punctuation character. Lowercasing comes first when ``lowercase`` is set.

    Example:
        >>> tokenize("Great film!<br /><br />I didn't expect THAT...")
        ['great', 'film', '!', 'i', "didn't", 'expect', 'that', '.', '.', '.']
    """
    if lowercase:
        text = text.lower()
    return _TOKEN.findall(_BREAK.sub(" ", text))


def _tokenize_batch(batch: dict[str, list], lowercase: bool) -> dict[str, list]:
    return {"tokens": [tokenize(text, lowercase) for text in batch["text"]]}


class IMDbDataModule(L.LightningDataModule):
    """The IMDb review sentiment data (25,000 train and 25,000 test reviews, ``neg``/``pos``).

    Sources: by default the hub dataset ``dataset_name``. ``data_dir`` loads local files instead,
    either ``train`` and ``test`` files in parquet, CSV or JSON lines (``train.parquet``,
    ``train-00000-of-00001.parquet``, ``test.csv``, ``test.jsonl``, ...) with the columns
    ``text`` and ``label`` (0 = neg, 1 = pos), or the original ``aclImdb/`` tree
    (``train/neg/*.txt``, ``train/pos/*.txt``, ``test/...``; ``data_dir`` may be the tree or
    its parent).

    ``prepare_data`` downloads and tokenises both splits with :func:`tokenize`; ``datasets``
    caches the result, so later runs reuse it. ``setup`` holds out a stratified ``val_fraction``
    of the train split (fixed by ``seed``; the test split is never used for choices), builds the
    vocabulary from the rest (``<pad>`` = 0, ``<unk>`` = 1, then by falling frequency, ties
    alphabetical) and encodes every review, truncated to its first ``max_length`` tokens.

    Batches are dicts: ``input_ids`` (B, T) int64 padded with 0, ``lengths`` (B,) int64 on the
    CPU and ``labels`` (B,) int64. Training batches are length-bucketed (see
    :class:`~lightning_gru.data.BucketBatchSampler`) and reshuffled every epoch under ``seed``;
    validation and test batches are sorted by length. Predict batches (``predict_texts`` and the
    lines of ``predict_file``, in that order, never reordered) hold ``input_ids``, ``lengths``
    and ``text``, the raw strings. A review with no tokens is encoded as ``[unk_index]``, so no
    length is 0.

    Predicting from a checkpoint needs no training data: Lightning restores the vocabulary
    through :meth:`load_state_dict` and ``prepare_data`` downloads nothing while predicting.

    Args:
        data_dir: a folder of local files (see above); ``None`` loads ``dataset_name``.
        dataset_name: a Hugging Face Hub dataset with ``train`` and ``test`` splits.
        val_fraction: the share of the train split held out for validation.
        max_vocab_size: the largest vocabulary, ``<pad>`` and ``<unk>`` included.
        min_freq: words seen fewer times in the training portion become ``<unk>``.
        max_length: keep the first ``max_length`` tokens of a review; ``-1`` keeps them all.
        lowercase: lowercase before tokenising.
        batch_size: reviews per batch.
        num_workers: ``DataLoader`` worker processes.
        seed: the seed of the validation split and of the batch order.
        cache_dir: the ``datasets`` cache folder; ``None`` uses ``HF_DATASETS_CACHE``.
        predict_texts: reviews to classify with ``Trainer.predict``.
        predict_file: a UTF-8 text file with one review per line to classify.
        bucket_batches: training batches per length-sorted chunk.
        num_proc: processes for tokenising; ``None`` tokenises in this process.

    Example:
        >>> import shutil, tempfile
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> rows = "text,label\\n" + "A dull film.,0\\nGreat fun!,1\\n" * 2  # 2 neg, 2 pos
        >>> for split in ("train", "test"):
        ...     _ = (folder / f"{split}.csv").write_text(rows)
        >>> # the real data: data_dir="../shared/data/imdb", or None for the hub's stanfordnlp/imdb
        >>> dm = IMDbDataModule(data_dir=str(folder), cache_dir=str(folder / "cache"),
        ...     val_fraction=0.5, batch_size=2)
        >>> dm.prepare_data(); dm.setup("fit")
        >>> dm.vocab_size, len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)
        (9, 2, 2, 4)
        >>> dm.vocab.idx_to_token  # from the two training reviews, ties alphabetical
        ['<pad>', '<unk>', '!', '.', 'a', 'dull', 'film', 'fun', 'great']
        >>> batch = next(iter(dm.train_dataloader()))
        >>> sorted(batch), batch["input_ids"].dtype
        (['input_ids', 'labels', 'lengths'], torch.int64)
        >>> batch["input_ids"], batch["lengths"], batch["labels"]
        (tensor([[8, 7, 2, 0],
                [4, 5, 6, 3]]), tensor([3, 4]), tensor([1, 0]))
        >>> dm.encode(["A great film?"])  # "?" is not in the vocabulary: <unk>
        [[4, 8, 6, 1]]
        >>> shutil.rmtree(folder)
    """

    pad_index = 0
    unk_index = 1

    def __init__(
        self,
        data_dir: str | None = None,
        dataset_name: str = "stanfordnlp/imdb",
        val_fraction: float = 0.1,
        max_vocab_size: int = 25000,
        min_freq: int = 1,
        max_length: int = 400,
        lowercase: bool = True,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 42,
        cache_dir: str | None = None,
        predict_texts: list[str] | None = None,
        predict_file: str | None = None,
        bucket_batches: int = 100,
        num_proc: int | None = None,
    ) -> None:
        super().__init__()
        check_fraction("val_fraction", val_fraction)
        check_limit("max_length", max_length)
        check_at_least(1, batch_size=batch_size, bucket_batches=bucket_batches)
        check_at_least(2, max_vocab_size=max_vocab_size)  # <pad> and <unk>
        check_at_least(0, num_workers=num_workers)
        check_seed("seed", seed)
        check_texts("predict_texts", predict_texts)
        for i, text in enumerate(predict_texts or []):
            if not text.strip():  # as a blank line of predict_file is
                raise ValueError(f"predict_texts[{i}] is blank: a review to classify needs words")
        self.save_hyperparameters()
        self.data_dir = data_dir
        self.dataset_name = dataset_name
        self.val_fraction = val_fraction
        self.max_vocab_size = max_vocab_size
        self.min_freq = min_freq
        self.max_length = max_length
        self.lowercase = lowercase
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.cache_dir = cache_dir
        self.predict_texts = predict_texts
        self.predict_file = predict_file
        self.bucket_batches = bucket_batches
        self.num_proc = num_proc
        self.class_names = list(CLASS_NAMES)
        self.vocab: Vocab | None = None
        self.train_dataset: _EncodedReviews | None = None
        self.val_dataset: _EncodedReviews | None = None
        self.test_dataset: _EncodedReviews | None = None

    # -- Lightning hooks ---------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Download (hub) and tokenise both splits into the ``datasets`` cache."""
        if self.trainer is not None and self.trainer.predicting:
            return  # the vocabulary comes from the checkpoint; predict texts need no download
        self._tokenised()

    def setup(self, stage: str | None = None) -> None:
        """Split, build the vocabulary and encode (``fit``/``validate``/``test``); ``predict``
        only checks the predict inputs: it runs before Lightning restores the vocabulary."""
        check_one_process(self)
        if stage == "predict":
            self._predict_inputs()
        elif self.train_dataset is None:
            self._build()

    def train_dataloader(self) -> DataLoader:
        dataset = self._datasets()[0]
        sampler = BucketBatchSampler(
            dataset.lengths, self.batch_size, self.bucket_batches, shuffle=True, seed=self.seed
        )
        return self._loader(dataset, at_trainer_epoch(sampler, self.trainer))

    def val_dataloader(self) -> DataLoader | list:
        dataset = self._datasets()[1]
        if not len(dataset):
            return []  # val_fraction=0: no validation
        return self._loader(dataset, BucketBatchSampler(dataset.lengths, self.batch_size, 1, False))

    def test_dataloader(self) -> DataLoader:
        dataset = self._datasets()[2]
        return self._loader(dataset, BucketBatchSampler(dataset.lengths, self.batch_size, 1, False))

    def predict_dataloader(self) -> DataLoader:
        texts = self._predict_inputs()
        warn_vocabulary_from_data(self)
        dataset = [
            {"input_ids": np.asarray(ids), "text": text}
            for ids, text in zip(self.encode(texts), texts, strict=True)
        ]
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_reviews,
        )

    def state_dict(self) -> dict[str, Any]:
        """The vocabulary and tokenizer settings (plain lists, strings and numbers)."""
        if self.vocab is None:
            return {}
        return {
            "tokenizer": TOKENIZER,
            "lowercase": self.lowercase,
            "max_length": self.max_length,
            "class_names": list(self.class_names),
            "vocab": self.vocab.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved; the checkpoint's settings win over the
        arguments (with a warning where they differ), and splits already encoded with another
        vocabulary are encoded again."""
        if not state_dict:
            return
        if state_dict.get("tokenizer") != TOKENIZER:
            raise ValueError(
                f"checkpoint tokenizer {state_dict.get('tokenizer')!r} is not {TOKENIZER!r}"
            )
        vocab = Vocab.from_state_dict(state_dict["vocab"])
        settings = {"lowercase": state_dict["lowercase"], "max_length": state_dict["max_length"]}
        if adopt_checkpoint_settings(self, settings) or vocab != self.vocab:
            self.train_dataset = self.val_dataset = self.test_dataset = None
        self.vocab = vocab
        self.class_names = list(state_dict.get("class_names", CLASS_NAMES))

    # -- public helpers ----------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """The vocabulary size; builds the vocabulary (loads the train split) if needed."""
        return len(self._vocab())

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids of ``texts``, tokenised and truncated like the training data.

        Example:
            >>> dm = IMDbDataModule()
            >>> vocab = {"idx_to_token": ["<pad>", "<unk>", "good", "!"], "unk_token": "<unk>"}
            >>> dm.load_state_dict({"tokenizer": "imdb-words-v1", "lowercase": True,
            ...     "max_length": 4, "class_names": ["neg", "pos"], "vocab": vocab})
            >>> dm.encode(["Good, good good!", "<br />"])
            [[2, 1, 2, 2], [1]]
        """
        if isinstance(texts, str):  # its characters would be encoded as reviews, one each
            raise TypeError("encode takes a list of texts, got one str: pass [text]")
        vocab = self._vocab()
        limit = None if self.max_length == -1 else self.max_length
        encoded = []
        for text in texts:
            ids = vocab.lookup(tokenize(text, self.lowercase)[:limit])
            encoded.append(ids or [self.unk_index])
        return encoded

    # -- loading -----------------------------------------------------------------------------

    def _raw_splits(self) -> dict[str, Any]:
        """The train and test splits as ``datasets.Dataset`` objects, checked."""
        import datasets

        if self.data_dir is None:
            loaded = fetch(
                f"{self.dataset_name!r} from the Hugging Face Hub",
                "pass data_dir= a folder with train/test parquet, CSV or JSON-lines files "
                "or the aclImdb/ tree to load local files instead (on the command line "
                "--data.data_dir, or the overlay recipes/sentiment/local-data.yaml)",
                lambda: datasets.load_dataset(self.dataset_name, cache_dir=self.cache_dir),
            )
            missing = [s for s in _SPLITS if s not in loaded]
            if missing:
                raise ValueError(f"{self.dataset_name!r} has no {missing} split(s)")
            splits = {s: (loaded[s], repr(self.dataset_name) + f" ({s})") for s in _SPLITS}
        else:
            root = Path(self.data_dir).expanduser()
            if not root.is_dir():
                raise FileNotFoundError(f"data_dir {str(root)!r} is not a folder")
            trees = [p for p in (root, root / "aclImdb") if (p / "train" / "pos").is_dir()]
            loader = _load_acl_tree if trees else _load_table_files
            splits = {s: loader((trees or [root])[0], s, self.cache_dir) for s in _SPLITS}
        for dataset, source in splits.values():
            _check_reviews(dataset, source)
        return {s: dataset for s, (dataset, _) in splits.items()}

    def _tokenised(self) -> dict[str, Any]:
        """Both splits with a ``tokens`` column instead of ``text`` (cached by ``datasets``)."""
        return {
            split: dataset.map(
                _tokenize_batch,
                batched=True,
                fn_kwargs={"lowercase": self.lowercase},
                remove_columns=[c for c in dataset.column_names if c != "label"],
                num_proc=self.num_proc,
                desc=f"Tokenising IMDb {split}",
            )
            for split, dataset in self._raw_splits().items()
        }

    def _build(self) -> None:
        tokenised = self._tokenised()
        train = _arrow(tokenised["train"])
        labels = np.asarray(train.column("label").to_numpy(), dtype=np.int64)
        train_idx, val_idx = _stratified_split(labels, self.val_fraction, self.seed)
        if not len(train_idx):
            raise ValueError(
                f"val_fraction={self.val_fraction} leaves no training review of the "
                f"{len(labels)} in the train split; lower it"
            )
        if self.val_fraction > 0 and not len(val_idx):
            raise DataConfigError(
                f"val_fraction={self.val_fraction} of the {len(labels)} reviews of the train split "
                "holds out none to validate: raise it, or pass val_fraction=0 to train without "
                "validation"
            )
        if self.vocab is None:
            self.vocab = self._count_vocab(train.column("tokens").take(pa.array(train_idx)))
        encoded = self._encode_table(train)
        self.train_dataset = encoded.subset(train_idx)
        self.val_dataset = encoded.subset(val_idx)
        self.test_dataset = self._encode_table(_arrow(tokenised["test"]))

    def _count_vocab(self, tokens: pa.ChunkedArray) -> Vocab:
        counts = pc.value_counts(pc.list_flatten(tokens))
        values, freqs = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
        pairs = sorted(zip(values, freqs, strict=True))  # alphabetical, so ties stay alphabetical
        return Vocab(
            pairs, ("<pad>", "<unk>"), "<unk>", min_freq=self.min_freq, max_size=self.max_vocab_size
        )

    def _encode_table(self, table: pa.Table) -> _EncodedReviews:
        """Encode a ``tokens``/``label`` table with Arrow kernels (no Python loop per token)."""
        value_set = pa.array(self._vocab().idx_to_token, pa.string())
        ids, lengths = [], []
        for chunk in table.column("tokens").chunks:
            if self.max_length != -1:
                chunk = pc.list_slice(chunk, 0, self.max_length)
            lengths.append(pc.list_value_length(chunk).to_numpy(zero_copy_only=False))
            found = pc.index_in(pc.list_flatten(chunk), value_set=value_set)
            ids.append(pc.fill_null(found, self.unk_index).to_numpy().astype(np.int32))
        labels = np.asarray(table.column("label").to_numpy(), dtype=np.int64)
        return _EncodedReviews(
            np.concatenate(ids or [np.zeros(0, np.int32)]),
            np.concatenate(lengths or [np.zeros(0, np.int64)]).astype(np.int64),
            labels,
            self.unk_index,
        )

    def _vocab(self) -> Vocab:
        if self.vocab is None:
            self._build()
        assert self.vocab is not None
        return self.vocab

    def _datasets(self) -> tuple[_EncodedReviews, _EncodedReviews, _EncodedReviews]:
        if self.train_dataset is None:
            self._build()
        return self.train_dataset, self.val_dataset, self.test_dataset  # type: ignore[return-value]

    def _predict_inputs(self) -> list[str]:
        texts = list(self.predict_texts or [])
        if self.predict_file is not None:
            texts += _read_lines(existing_file(self.predict_file, "predict_file"))
        if not texts:
            raise DataConfigError("IMDbDataModule needs predict_texts or predict_file to predict")
        return texts

    def _loader(self, dataset: _EncodedReviews, sampler: BucketBatchSampler) -> DataLoader:
        return DataLoader(
            dataset, batch_sampler=sampler, num_workers=self.num_workers, collate_fn=collate_reviews
        )


class _EncodedReviews(Dataset):
    """Encoded reviews as one flat id array plus lengths, optionally viewed through ``index``."""

    def __init__(
        self,
        ids: np.ndarray,
        lengths: np.ndarray,
        labels: np.ndarray,
        unk_index: int,
        index: np.ndarray | None = None,
    ) -> None:
        self.ids, self.all_lengths, self.labels, self.unk_index = ids, lengths, labels, unk_index
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.index = np.arange(len(lengths)) if index is None else np.asarray(index)

    def subset(self, index: np.ndarray) -> _EncodedReviews:
        view = _EncodedReviews.__new__(_EncodedReviews)
        view.__dict__.update(self.__dict__)
        view.index = self.index[index]
        return view

    @property
    def lengths(self) -> np.ndarray:
        """The batch lengths, at least 1 (an empty review is ``[unk]``)."""
        return np.maximum(self.all_lengths[self.index], 1)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = self.index[i]
        start = self.starts[j]
        ids = self.ids[start : start + self.all_lengths[j]]
        if not len(ids):
            ids = np.array([self.unk_index], np.int32)
        return {"input_ids": ids, "label": self.labels[j]}


def collate_reviews(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad ``input_ids`` with 0 into (B, T) and add ``lengths``; ``label`` becomes ``labels``."""
    seqs = [torch.as_tensor(e["input_ids"], dtype=torch.long) for e in examples]
    batch: dict[str, Any] = {
        "input_ids": pad_sequence(seqs, batch_first=True, padding_value=0),  # (B, T)
        "lengths": torch.tensor([len(s) for s in seqs], dtype=torch.long),  # (B,)
    }
    if "label" in examples[0]:
        batch["labels"] = torch.tensor([int(e["label"]) for e in examples], dtype=torch.long)
    if "text" in examples[0]:
        batch["text"] = [e["text"] for e in examples]
    return batch


def _arrow(dataset: Any) -> pa.Table:
    """The Arrow table behind a freshly loaded or mapped ``datasets.Dataset`` (no index map)."""
    if dataset._indices is not None:
        dataset = dataset.flatten_indices()
    return dataset.data.table


def _stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and validation row indices; each label keeps its share in both."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        val.append(rng.permutation(rows)[: round(len(rows) * val_fraction)])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    return np.setdiff1d(np.arange(len(labels)), val_idx), val_idx


def _load_table_files(root: Path, split: str, cache_dir: str | None) -> tuple[Any, str]:
    found = {}
    for ext, builder in _FORMATS.items():
        files = sorted([*root.glob(f"{split}.{ext}"), *root.glob(f"{split}-*.{ext}")])
        if files:
            found[ext] = (builder, files)
    if len(found) != 1:
        problem = "no" if not found else f"several kinds of ({', '.join(found)})"
        raise FileNotFoundError(
            f"data_dir {str(root)!r} has {problem} {split} files: expected {split}.parquet, "
            f"{split}.csv or {split}.jsonl (or {split}-*.<ext> shards), or an aclImdb/ tree"
        )
    builder, files = next(iter(found.values()))
    names = [str(f) for f in files]
    return load_local_files(builder, names, cache_dir), ", ".join(names)


def _load_acl_tree(root: Path, split: str, cache_dir: str | None) -> tuple[Any, str]:
    """One split of the ``aclImdb/`` tree: neg reviews then pos reviews, each by numeric id.

    ``Dataset.from_generator`` reads the files once into the cache; its fingerprint covers every
    file's path, size and modification time, so an edited tree is read again.
    """
    import datasets

    files = []
    for label, name in enumerate(CLASS_NAMES):
        folder = root / split / name
        found = sorted(folder.glob("*.txt"), key=_review_order)
        if not found:
            raise FileNotFoundError(f"aclImdb folder {str(folder)!r} has no .txt reviews")
        for path in found:
            stat = path.stat()
            files.append((str(path), label, stat.st_size, stat.st_mtime_ns))
    features = datasets.Features(text=datasets.Value("string"), label=datasets.Value("int64"))
    dataset = read_local(
        str(root / split),
        "UTF-8 text",
        lambda: datasets.Dataset.from_generator(
            _read_reviews, features, cache_dir=cache_dir, gen_kwargs={"files": files}
        ),
    )
    text = pc.utf8_trim_whitespace(_arrow(dataset).column("text"))
    for row in np.flatnonzero(pc.utf8_length(text).to_numpy() == 0)[:1]:
        raise DataFileError(f"{files[row][0]}: empty review")
    return dataset, str(root / split)


def _read_reviews(files: list[tuple[str, int, int, int]]) -> Iterator[dict[str, Any]]:
    for path, label, _, _ in files:
        # the exact text, as in the parquet (no newline translation)
        yield {"text": _utf8_text(path, "utf-8", newline=""), "label": label}


def _utf8_text(path: str | Path, encoding: str, newline: str | None = None) -> str:
    """The text of ``path``; a ``DataFileError`` naming it when it is not UTF-8."""
    try:
        with open(path, encoding=encoding, newline=newline) as f:
            return f.read()
    except UnicodeDecodeError as err:
        raise DataFileError(
            f"{path}: cannot be read as UTF-8 text: UnicodeDecodeError: {err}"
        ) from err


def _review_order(path: Path) -> tuple:
    match = _REVIEW_FILE.fullmatch(path.name)
    return (0, int(match.group(1)), path.name) if match else (1, 0, path.name)


def _check_reviews(dataset: Any, source: str) -> None:
    """Raise ``DataFileError`` naming ``source`` for missing columns, bad labels or empty texts."""
    missing = [c for c in ("text", "label") if c not in dataset.column_names]
    if missing:
        raise DataFileError(
            f"{source}: missing column(s) {missing}; IMDb files need the columns 'text' and "
            f"'label' (0 = neg, 1 = pos), found {dataset.column_names}"
        )
    table = _arrow(dataset)
    text, label = table.column("text"), table.column("label")
    if not pa.types.is_string(text.type) and not pa.types.is_large_string(text.type):
        raise DataFileError(f"{source}: column 'text' must hold strings, found {text.type}")
    if not pa.types.is_integer(label.type):
        where = ""
        if pa.types.is_floating(label.type):  # a CSV row without its label reads as floats
            missing = pc.is_null(label, nan_is_null=True)
            if pc.any(missing).as_py():
                where = f"; row {pc.index(missing, True).as_py()} has none"
        raise DataFileError(
            f"{source}: column 'label' must hold integers 0 and 1, found {label.type}{where}"
        )
    bad = pc.invert(pc.fill_null(pc.is_in(label, value_set=pa.array([0, 1], label.type)), False))
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py()
        raise DataFileError(
            f"{source}: labels must be 0 (neg) or 1 (pos), row {row} has {label[row].as_py()!r}"
        )
    empty = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), True)
    if pc.any(empty).as_py():
        raise DataFileError(f"{source}: row {pc.index(empty, True).as_py()} has an empty text")


def _read_lines(path: Path) -> list[str]:
    """The lines of a predict file; a blank line is an error (it would be dropped silently)."""
    lines = _utf8_text(path, "utf-8-sig").split("\n")  # -sig: drop a BOM (Notepad's)
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataFileError(f"{path}: line {number} is blank; write one review per line")
    if not lines:
        raise DataFileError(f"{path}: the file has no reviews")
    return lines
