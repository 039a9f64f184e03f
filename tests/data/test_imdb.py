"""IMDbDataModule on tiny local fixtures: loading formats, splits, vocabulary, batches, errors,
checkpoint state and predicting without training data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from _data_fixtures import make_reviews, write_acl_tree, write_splits

from lightning_gru.data import (
    DataFileError,
    IMDbDataModule,
    SourceUnreachableError,
    tokenize,
)
from lightning_gru.data.imdb import TOKENIZER, _stratified_split, collate_reviews


def make_dm(data_dir, cache_dir, **kwargs) -> IMDbDataModule:
    dm = IMDbDataModule(data_dir=str(data_dir), cache_dir=cache_dir, batch_size=8, **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def encoded_rows(dataset) -> list[tuple[list[int], int]]:
    rows = (dataset[i] for i in range(len(dataset)))
    return [(row["input_ids"].tolist(), int(row["label"])) for row in rows]


def test_tokenize_removes_breaks_keeps_contractions_and_punctuation():
    text = "It's GREAT<br />fun, isn't it?<BR/>10/10"
    assert tokenize(text) == ["it's", "great", "fun", ",", "isn't", "it", "?", "10", "/", "10"]
    assert tokenize(text, lowercase=False)[:2] == ["It's", "GREAT"]


def test_parquet_folder_splits_stratified_and_vocab_from_training_rows_only(parquet_dir, cache_dir):
    dm = make_dm(parquet_dir, cache_dir, val_fraction=0.25)
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (30, 10, 20)
    val_labels = [int(dm.val_dataset[i]["label"]) for i in range(10)]
    assert sorted(val_labels) == [0] * 5 + [1] * 5
    tokens = dm.vocab.idx_to_token
    assert tokens[:2] == ["<pad>", "<unk>"] and dm.vocab_size == len(tokens)
    assert "unseenword" not in tokens  # only in the test split
    # "review", ":", "this", ... occur in every review; ties are alphabetical
    train = make_reviews(20)
    val_rows = set(dm.val_dataset.index.tolist())
    counts: dict[str, int] = {}
    for row, text in enumerate(train["text"]):
        if row not in val_rows:
            for token in tokenize(text):
                counts[token] = counts.get(token, 0) + 1
    expected = sorted(counts, key=lambda t: (-counts[t], t))
    assert tokens[2:] == expected


def test_batches_are_padded_dicts_with_cpu_lengths(parquet_dir, cache_dir):
    dm = make_dm(parquet_dir, cache_dir)
    batches = list(dm.train_dataloader())
    assert sum(len(b["labels"]) for b in batches) == len(dm.train_dataset) == 36
    for batch in batches:
        ids, lengths = batch["input_ids"], batch["lengths"]
        assert sorted(batch) == ["input_ids", "labels", "lengths"]
        assert ids.dtype == lengths.dtype == batch["labels"].dtype == torch.long
        assert lengths.device.type == "cpu" and ids.shape == (len(lengths), int(lengths.max()))
        mask = torch.arange(ids.shape[1]) < lengths[:, None]
        assert (ids[~mask] == 0).all() and (ids[mask] > 0).all()


def test_encode_matches_the_arrow_encoding_and_truncates(parquet_dir, cache_dir):
    dm = make_dm(parquet_dir, cache_dir, max_length=12)
    texts = make_reviews(10, prefix="Unseenword ")["text"].tolist()
    assert [ids for ids, _ in encoded_rows(dm.test_dataset)] == dm.encode(texts)
    assert max(len(ids) for ids in dm.encode(texts)) == 12
    assert dm.encode(["Unseenword"]) == [[dm.unk_index]] and dm.encode([""]) == [[dm.unk_index]]
    with pytest.raises(TypeError, match=r"a list of texts, got one str: pass \[text\]"):
        dm.encode("a review")  # would be encoded character by character


def test_vocab_limits_and_lowercase(parquet_dir, cache_dir):
    small = make_dm(parquet_dir, cache_dir, max_vocab_size=6)
    assert small.vocab_size == 6
    rare = make_dm(parquet_dir, cache_dir, min_freq=1000)
    assert rare.vocab.idx_to_token == ["<pad>", "<unk>"]
    cased = make_dm(parquet_dir, cache_dir, lowercase=False)
    assert "Review" in cased.vocab and "review" not in cased.vocab


def test_same_seed_same_batches_other_seed_other_split(parquet_dir, cache_dir):
    def first_epoch(seed):
        dm = make_dm(parquet_dir, cache_dir, seed=seed)
        batches = [b["input_ids"].tolist() for b in dm.train_dataloader()]
        return dm.val_dataset.index.tolist(), batches

    assert first_epoch(1) == first_epoch(1)
    assert first_epoch(1)[0] != first_epoch(2)[0]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_csv_and_jsonl_load_like_parquet(tmp_path, imdb_frames, parquet_dir, cache_dir, fmt):
    reference = make_dm(parquet_dir, cache_dir)
    dm = make_dm(write_splits(tmp_path / fmt, fmt, *imdb_frames), cache_dir)
    assert dm.vocab == reference.vocab
    assert encoded_rows(dm.train_dataset) == encoded_rows(reference.train_dataset)
    assert encoded_rows(dm.test_dataset) == encoded_rows(reference.test_dataset)


@pytest.mark.parametrize("nested", [False, True], ids=["tree", "parent-of-aclImdb"])
def test_aclimdb_tree_loads_like_parquet(tmp_path, imdb_frames, parquet_dir, cache_dir, nested):
    root = write_acl_tree(tmp_path / "aclImdb", *imdb_frames)
    # file names sort as strings 0, 1, 10, 11, ..., 2: the module must order by numeric id
    dm = make_dm(root.parent if nested else root, cache_dir)
    reference = make_dm(parquet_dir, cache_dir)
    assert dm.vocab == reference.vocab
    assert encoded_rows(dm.train_dataset) == encoded_rows(reference.train_dataset)
    assert encoded_rows(dm.test_dataset) == encoded_rows(reference.test_dataset)


@pytest.mark.parametrize("name", ["imdb [v2]", "imdb*"])
def test_a_folder_name_with_glob_characters_is_read_literally(
    tmp_path, imdb_frames, parquet_dir, cache_dir, name
):
    folder = write_splits(tmp_path / name, "parquet", *imdb_frames)
    write_splits(tmp_path / "imdbX", "parquet", make_reviews(2), make_reviews(2))  # "imdb*" too
    dm = make_dm(folder, cache_dir)
    reference = make_dm(parquet_dir, cache_dir)
    assert dm.vocab == reference.vocab
    assert encoded_rows(dm.train_dataset) == encoded_rows(reference.train_dataset)
    assert encoded_rows(dm.test_dataset) == encoded_rows(reference.test_dataset)


def test_a_relative_folder_in_a_working_folder_with_glob_characters(
    tmp_path, imdb_frames, parquet_dir, cache_dir, monkeypatch
):
    """``datasets`` joins a relative pattern to the working folder without escaping it."""
    working = tmp_path / "run[1]"
    write_splits(working / "imdb", "parquet", *imdb_frames)
    monkeypatch.chdir(working)
    dm = make_dm("imdb", cache_dir)
    assert encoded_rows(dm.train_dataset) == encoded_rows(
        make_dm(parquet_dir, cache_dir).train_dataset
    )


@pytest.mark.parametrize("how", ["dataset_name", "data_dir"])
def test_hub_layout_with_unsupervised_split(tmp_path, imdb_frames, parquet_dir, cache_dir, how):
    """A snapshot of the hub repository: ``plain_text/<split>-00000-of-00001.parquet``."""
    folder = tmp_path / "imdb-snapshot" / "plain_text"
    folder.mkdir(parents=True)
    unsupervised = make_reviews(3).assign(label=-1)
    frames = {"train": imdb_frames[0], "test": imdb_frames[1], "unsupervised": unsupervised}
    for split, frame in frames.items():
        frame.to_parquet(folder / f"{split}-00000-of-00001.parquet", index=False)
    source = (
        {"dataset_name": str(folder.parent)} if how == "dataset_name" else {"data_dir": str(folder)}
    )
    dm = IMDbDataModule(cache_dir=cache_dir, batch_size=8, **source)
    dm.setup("fit")
    reference = make_dm(parquet_dir, cache_dir)
    assert dm.vocab == reference.vocab
    assert encoded_rows(dm.test_dataset) == encoded_rows(reference.test_dataset)


def test_edited_aclimdb_tree_is_read_again(tmp_path, imdb_frames, cache_dir):
    root = write_acl_tree(tmp_path / "aclImdb", *imdb_frames)
    before = make_dm(root, cache_dir, val_fraction=0.0)
    (root / "train" / "neg" / "0_2.txt").write_text("Unseenword unseenword brand new words")
    after = make_dm(root, cache_dir, val_fraction=0.0)
    assert "unseenword" not in before.vocab and "unseenword" in after.vocab
    assert len(after.train_dataset) == 40 and after.val_dataloader() == []
    assert (
        after.train_dataset[0]["input_ids"].tolist()
        == after.encode(["Unseenword"])[0] * 2 + (after.encode(["brand new words"])[0])
    )


def test_prepare_data_second_run_reuses_the_cache(parquet_dir, cache_dir):
    from pathlib import Path

    IMDbDataModule(data_dir=str(parquet_dir), cache_dir=cache_dir).prepare_data()
    files = {p: p.stat().st_mtime_ns for p in Path(cache_dir).rglob("*.arrow")}
    assert any("cache-" in p.name for p in files)  # the tokenised map results
    IMDbDataModule(data_dir=str(parquet_dir), cache_dir=cache_dir).prepare_data()
    assert {p: p.stat().st_mtime_ns for p in Path(cache_dir).rglob("*.arrow")} == files


# -- errors ---------------------------------------------------------------------------------


def bad_frame(**changes) -> pd.DataFrame:
    frame = make_reviews(3)
    for column, (row, value) in changes.items():
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(
    "train, message",
    [
        pytest.param(
            make_reviews(3).drop(columns="label"), r"missing column.*'label'", id="column"
        ),
        pytest.param(bad_frame(label=(4, 2)), r"0 \(neg\) or 1 \(pos\), row 4 has 2", id="label-2"),
        pytest.param(
            make_reviews(3).replace({"label": {0: "neg", 1: "pos"}}),
            "must hold integers",
            id="label-str",
        ),
        pytest.param(bad_frame(text=(5, "  ")), "row 5 has an empty text", id="empty-text"),
        pytest.param(
            make_reviews(3).assign(text=range(6)), "column 'text' must hold strings", id="text-int"
        ),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, cache_dir, train, message):
    folder = write_splits(tmp_path / "bad", "parquet", train, make_reviews(3))
    with pytest.raises(ValueError, match=message) as err:
        IMDbDataModule(data_dir=str(folder), cache_dir=cache_dir).prepare_data()
    assert "train.parquet" in str(err.value)


def test_a_csv_row_without_its_label_is_named(tmp_path, cache_dir):
    folder = write_splits(tmp_path / "bad", "csv", bad_frame(label=(2, None)), make_reviews(3))
    with pytest.raises(ValueError, match=r"train.csv: column 'label' .* row 2 has none"):
        IMDbDataModule(data_dir=str(folder), cache_dir=cache_dir).prepare_data()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("train.parquet", b"", "ArrowInvalid: Parquet file size is 0 bytes"),
        ("train.csv", b"", "EmptyDataError"),
        ("train.csv", b"text,label\n", "no rows"),
        ("train.jsonl", b"", "no rows"),
    ],
    ids=["parquet-0-bytes", "csv-0-bytes", "csv-header-only", "jsonl-0-bytes"],
)
def test_empty_files_name_the_file(tmp_path, cache_dir, imdb_frames, name, content, message):
    """Not datasets' "An error occurred while generating the dataset"."""
    folder = write_splits(tmp_path / "d", name.split(".")[1], *imdb_frames)
    (folder / name).write_bytes(content)
    with pytest.raises(ValueError, match=f"{name}: cannot be read as .* files: {message}"):
        IMDbDataModule(data_dir=str(folder), cache_dir=cache_dir).prepare_data()


def test_missing_or_ambiguous_split_files(tmp_path, imdb_frames, cache_dir):
    folder = write_splits(tmp_path / "d", "parquet", *imdb_frames)
    (folder / "test.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="has no test files"):
        IMDbDataModule(data_dir=str(folder), cache_dir=cache_dir).prepare_data()
    write_splits(folder, "csv", *imdb_frames)
    with pytest.raises(FileNotFoundError, match="several kinds of"):
        IMDbDataModule(data_dir=str(folder), cache_dir=cache_dir).prepare_data()
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        IMDbDataModule(data_dir=str(tmp_path / "nowhere")).prepare_data()


def test_an_aclimdb_folder_without_reviews_is_named(tmp_path, imdb_frames, cache_dir):
    root = write_acl_tree(tmp_path / "aclImdb", *imdb_frames)
    for review in (root / "test" / "neg").iterdir():
        review.unlink()
    with pytest.raises(FileNotFoundError, match=r"aclImdb folder .*test/neg' has no \.txt"):
        IMDbDataModule(data_dir=str(root), cache_dir=cache_dir).prepare_data()


@pytest.mark.parametrize(
    "content, message",
    [
        pytest.param(b"", "empty review", id="empty"),
        pytest.param(
            "caf\u00e9 was great".encode("latin-1"),
            "cannot be read as UTF-8 text: UnicodeDecodeError",
            id="latin-1",
        ),
    ],
)
def test_bad_review_file_in_aclimdb_tree_is_named(
    tmp_path, imdb_frames, cache_dir, content, message
):
    root = write_acl_tree(tmp_path / "aclImdb", *imdb_frames)
    (root / "train" / "pos" / "3_9.txt").write_bytes(content)
    with pytest.raises(DataFileError, match=rf"3_9\.txt: {message}"):
        IMDbDataModule(data_dir=str(root), cache_dir=cache_dir).prepare_data()


def test_unreachable_hub_says_how_to_load_local_files(cache_dir):
    with pytest.raises(SourceUnreachableError) as err:
        IMDbDataModule(cache_dir=cache_dir).prepare_data()
    message = str(err.value)
    assert "'stanfordnlp/imdb' from the Hugging Face Hub" in message
    assert "data_dir=" in message and "HF_HUB_OFFLINE=1" in message


# -- state_dict, predict -------------------------------------------------------------------


def test_state_dict_round_trip_lets_predict_run_without_training_data(
    tmp_path, parquet_dir, cache_dir
):
    trained = make_dm(parquet_dir, cache_dir, max_length=9, lowercase=False)
    state = trained.state_dict()
    assert torch.load(_saved(tmp_path, state), weights_only=True) == state
    predict_file = tmp_path / "reviews.txt"
    predict_file.write_text("Review 3: this film was weak.\nUnseenword great!\n")
    dm = IMDbDataModule(
        data_dir=str(tmp_path / "absent"), predict_texts=["Great"], predict_file=str(predict_file)
    )
    assert dm.state_dict() == {} and dm.class_names == ["neg", "pos"]
    with pytest.warns(UserWarning, match=r"lowercase=False \(not True\), max_length=9 \(not 400"):
        dm.load_state_dict(state)
    dm.setup("predict")
    assert dm.vocab == trained.vocab and (dm.lowercase, dm.max_length) == (False, 9)
    (batch,) = list(dm.predict_dataloader())
    texts = ["Great", "Review 3: this film was weak.", "Unseenword great!"]
    assert batch["text"] == texts and sorted(batch) == ["input_ids", "lengths", "text"]
    expected = trained.encode(texts)
    assert batch["lengths"].tolist() == [len(ids) for ids in expected]
    rows = zip(batch["input_ids"], batch["lengths"], strict=True)
    assert [row[:n].tolist() for row, n in rows] == expected


def _saved(tmp_path, state):
    path = tmp_path / "state.pt"
    torch.save(state, path)
    return path


def test_predict_inputs_are_checked(tmp_path):
    with pytest.raises(ValueError, match="predict_texts or predict_file"):
        IMDbDataModule().setup("predict")
    blank = tmp_path / "blank.txt"
    blank.write_text("good\n\nbad\n")
    with pytest.raises(ValueError, match=r"blank\.txt: line 2 is blank"):
        IMDbDataModule(predict_file=str(blank)).setup("predict")
    with pytest.raises(FileNotFoundError, match="predict_file"):
        IMDbDataModule(predict_file=str(tmp_path / "none.txt")).setup("predict")
    for blank_text in ("", "  \n"):  # refused when built, as a blank line of predict_file
        with pytest.raises(ValueError, match=r"^predict_texts\[1\] is blank"):
            IMDbDataModule(predict_texts=["good", blank_text])
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.txt: the file has no reviews"):
        IMDbDataModule(predict_file=str(empty)).setup("predict")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\u00e9 good\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt: cannot be read as UTF-8 text"):
        IMDbDataModule(predict_file=str(latin1)).setup("predict")


def test_a_predict_file_with_a_byte_order_mark_reads_like_one_without(tmp_path):
    """Notepad's "UTF-8 with BOM": the mark is not part of the first review."""
    path = tmp_path / "reviews.txt"
    path.write_text("Great film\nDull film\n", encoding="utf-8-sig")
    dm = IMDbDataModule(predict_file=str(path))
    vocab = {"idx_to_token": ["<pad>", "<unk>", "great", "film"], "unk_token": "<unk>"}
    dm.load_state_dict(
        {"tokenizer": TOKENIZER, "lowercase": True, "max_length": 400, "vocab": vocab}
    )
    (batch,) = list(dm.predict_dataloader())
    assert batch["text"] == ["Great film", "Dull film"]
    assert batch["input_ids"].tolist() == [[2, 3], [1, 3]]


def test_checkpoint_carries_the_vocabulary_to_trainer_predict(tmp_path, parquet_dir, cache_dir):
    import lightning as L

    class BagOfWords(L.LightningModule):
        def __init__(self, vocab_size: int) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.embedding = torch.nn.EmbeddingBag(vocab_size, 2, mode="sum", padding_idx=0)

        def forward(self, batch):
            return self.embedding(batch["input_ids"])

        def training_step(self, batch, batch_idx):
            return torch.nn.functional.cross_entropy(self(batch), batch["labels"])

        def predict_step(self, batch, batch_idx):
            return self(batch).argmax(-1)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    trainer_kwargs = dict(
        logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu"
    )
    dm = IMDbDataModule(data_dir=str(parquet_dir), cache_dir=cache_dir, batch_size=8)
    model = BagOfWords(dm.vocab_size)
    trainer = L.Trainer(max_epochs=3, default_root_dir=tmp_path, **trainer_kwargs)
    trainer.fit(model, datamodule=dm)
    ckpt = trainer.checkpoint_callback.best_model_path
    assert torch.load(ckpt, weights_only=True)["IMDbDataModule"] == dm.state_dict()

    # no data_dir: the hub is unreachable, so any attempt to load training data would fail
    texts = make_reviews(4)["text"].tolist()
    predict_dm = IMDbDataModule(cache_dir=cache_dir, predict_texts=texts, batch_size=3)
    restored = BagOfWords.load_from_checkpoint(ckpt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predictions = L.Trainer(default_root_dir=tmp_path, **trainer_kwargs).predict(
            restored, predict_dm, ckpt_path=ckpt
        )
    assert predict_dm.vocab == dm.vocab
    assert not [w for w in caught if "vocabulary built from" in str(w.message)]
    # without ckpt_path the module builds its vocabulary from the training data, and says so
    rebuilt = IMDbDataModule(data_dir=str(parquet_dir), cache_dir=cache_dir, predict_texts=texts)
    with pytest.warns(UserWarning, match="predicts with a vocabulary built from its training"):
        L.Trainer(default_root_dir=tmp_path, **trainer_kwargs).predict(restored, rebuilt)
    # the same predictions as the trained model on the training module's encoding
    examples = [
        {"input_ids": ids, "text": t} for ids, t in zip(dm.encode(texts), texts, strict=True)
    ]
    expected = model.predict_step(collate_reviews(examples), 0)
    assert torch.equal(torch.cat(predictions), expected)


def test_a_review_without_tokens_becomes_unk(tmp_path, cache_dir):
    train = make_reviews(3)
    train.loc[2, "text"] = "<br /><br />"  # not empty, but no tokens
    folder = write_splits(tmp_path / "d", "parquet", train, make_reviews(3))
    dm = make_dm(folder, cache_dir, val_fraction=0)  # 0.1 of 3 reviews a label holds out none
    dataset = dm._datasets()[0] if 2 in dm.train_dataset.index else dm.val_dataset
    position = dataset.index.tolist().index(2)
    assert dataset[position]["input_ids"].tolist() == [dm.unk_index]
    assert dataset.lengths.min() == 1


def test_a_val_fraction_that_leaves_no_training_review_is_refused(parquet_dir, cache_dir):
    with pytest.raises(ValueError, match="val_fraction=0.99 leaves no training review"):
        make_dm(parquet_dir, cache_dir, val_fraction=0.99)


def test_the_validation_split_is_drawn_at_random_within_each_label():
    labels = np.repeat([0, 1], 20)
    splits = [_stratified_split(labels, 0.25, seed)[1] for seed in (0, 1)]
    for val in splits:
        assert np.bincount(labels[val]).tolist() == [5, 5]  # stratified
    assert not np.array_equal(splits[0], splits[1])  # the seed draws them
    first_rows = np.r_[0:5, 20:25]
    assert not all(np.array_equal(val, first_rows) for val in splits)


def test_the_validation_share_of_each_label_is_rounded():
    """Guards against: ``int`` instead of ``round``: 15 * 0.1 is 1.5000000000000002, 2 reviews
    per label."""
    labels = np.repeat([0, 1], 15)
    _, val = _stratified_split(labels, 0.1, 0)
    assert np.bincount(labels[val]).tolist() == [2, 2]


def test_a_checkpoint_with_other_settings_re_encodes_the_splits(parquet_dir, cache_dir):
    """Guards against: splits encoded with the old ``max_length`` kept after ``load_state_dict``."""
    dm = make_dm(parquet_dir, cache_dir, max_length=9)
    state = {**dm.state_dict(), "max_length": 4}
    with pytest.warns(UserWarning, match=r"checkpoint's settings.*: max_length=4 \(not 9\)$"):
        dm.load_state_dict(state)
    assert dm.hparams["max_length"] == 4  # what the next checkpoint records
    lengths = [len(b["input_ids"][0]) for b in dm.test_dataloader()]
    assert max(lengths) == 4


def test_the_checkpoint_class_names_are_restored():
    """Guards against: ``class_names`` not restored from the checkpoint."""
    dm = IMDbDataModule()
    vocab = {"idx_to_token": ["<pad>", "<unk>", "good"], "unk_token": "<unk>"}
    dm.load_state_dict(
        {"tokenizer": TOKENIZER, "lowercase": True, "max_length": 400, "vocab": vocab,
         "class_names": ["bad", "good"]}
    )  # fmt: skip
    assert dm.class_names == ["bad", "good"]


def test_a_checkpoint_of_another_tokenizer_is_refused():
    """Guards against: the tokenizer check dropped."""
    vocab = {"idx_to_token": ["<pad>", "<unk>"], "unk_token": "<unk>"}
    state = {"tokenizer": "imdb-words-v0", "lowercase": True, "max_length": 4, "vocab": vocab}
    with pytest.raises(ValueError, match="tokenizer 'imdb-words-v0' is not"):
        IMDbDataModule().load_state_dict(state)


def test_the_training_batch_order_follows_the_seed(parquet_dir, cache_dir):
    """Guards against: the training sampler not given ``seed`` (the split alone followed it)."""

    def batches(seed):
        dm = make_dm(parquet_dir, cache_dir, seed=seed, val_fraction=0.0)
        return [b["input_ids"].tolist() for b in dm.train_dataloader()]

    assert batches(1) == batches(1) != batches(2)


def test_a_hub_dataset_without_a_test_split_is_named(tmp_path, cache_dir):
    """Guards against: the check for missing hub splits dropped (a KeyError later)."""
    folder = tmp_path / "snapshot" / "plain_text"
    folder.mkdir(parents=True)
    make_reviews(3).to_parquet(folder / "train-00000-of-00001.parquet", index=False)
    dm = IMDbDataModule(dataset_name=str(folder.parent), cache_dir=cache_dir)
    with pytest.raises(ValueError, match=r"has no \['test'\] split"):
        dm.prepare_data()


def test_validation_batches_are_sorted_by_length_and_fixed(parquet_dir, cache_dir):
    """Guards against: the validation sampler shuffled."""
    dm = make_dm(parquet_dir, cache_dir, val_fraction=0.5)
    passes = [[b["lengths"].tolist() for b in dm.val_dataloader()] for _ in range(2)]
    flat = [n for b in passes[0] for n in b]
    assert passes[0] == passes[1] and flat == sorted(flat)


def test_a_state_saved_before_the_vocabulary_is_built_restores_nothing():
    """A checkpoint written before ``setup`` (``Trainer.save_checkpoint`` of a fresh run)."""
    empty = IMDbDataModule().state_dict()
    assert empty == {}
    data = IMDbDataModule(lowercase=False)
    data.load_state_dict(empty)
    assert data.vocab is None and data.lowercase is False
