"""Integration checks against the real data in ``../shared/data`` (skipped where it is absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _data_fixtures import write_acl_tree

from lightning_gru.data import IMDbDataModule, TimeMachineDataModule

pytestmark = pytest.mark.shared_data

D2L_CHAR_VOCAB = ["<unk>", *" etainoshrdlmucfwgypbvkxzjq"]  # printed in the d2l book


def test_imdb_has_25000_reviews_per_split_12500_per_label(shared_data, cache_dir):
    dm = IMDbDataModule(data_dir=str(shared_data / "imdb"), cache_dir=cache_dir)
    dm.prepare_data()
    dm.setup("fit")
    train_labels = dm.train_dataset.labels  # the whole train split, before the val carve-out
    assert len(train_labels) == len(dm.test_dataset) == 25_000
    assert np.bincount(train_labels).tolist() == np.bincount(dm.test_dataset.labels).tolist()
    assert np.bincount(train_labels).tolist() == [12_500, 12_500]
    assert (len(dm.train_dataset), len(dm.val_dataset)) == (22_500, 2_500)
    val_labels = dm.val_dataset.labels[dm.val_dataset.index]
    assert np.bincount(val_labels).tolist() == [1_250, 1_250]
    assert dm.vocab_size == 25_000
    assert dm.vocab.idx_to_token[:6] == ["<pad>", "<unk>", "the", ".", ",", "and"]
    lengths = dm.train_dataset.lengths
    assert lengths.min() >= 1 and lengths.max() == 400


def test_time_machine_char_vocab_28_and_corpus_170580(shared_data, cache_dir):
    path = str(shared_data / "timemachine" / "timemachine.txt")
    full = TimeMachineDataModule(data_file=path, max_tokens=-1, cache_dir=cache_dir)
    full.setup("fit")
    assert full.vocab_size == 28 and full.vocab.idx_to_token == D2L_CHAR_VOCAB
    assert len(full.train_corpus) + len(full.val_corpus) == 170_580
    assert len(full.val_corpus) == 17_058
    d2l = TimeMachineDataModule(data_file=path, cache_dir=cache_dir)
    d2l.setup("fit")
    assert len(d2l.train_corpus) == 10_000 and d2l.val_corpus.tolist() == full.val_corpus.tolist()
    assert d2l.decode(d2l.train_corpus[:25].tolist()) == "the time machine by h g w"
    assert len(d2l.train_dataloader()) == 8 and len(d2l.val_dataloader()) == 15


@pytest.mark.slow
def test_imdb_aclimdb_tree_of_50000_files_loads_like_the_parquet(shared_data, tmp_path, cache_dir):
    frames = [pd.read_parquet(shared_data / "imdb" / f"{s}.parquet") for s in ("train", "test")]
    root = write_acl_tree(tmp_path / "aclImdb", *frames)
    tree = IMDbDataModule(data_dir=str(root), cache_dir=cache_dir)
    tree.setup("fit")
    parquet = IMDbDataModule(data_dir=str(shared_data / "imdb"), cache_dir=cache_dir)
    parquet.setup("fit")
    assert tree.vocab == parquet.vocab
    for a, b in [
        (tree.train_dataset, parquet.train_dataset),
        (tree.test_dataset, parquet.test_dataset),
    ]:
        assert np.array_equal(a.ids, b.ids) and np.array_equal(a.labels, b.labels)
