"""TimeMachineDataModule on a short text: d2l preprocessing and vocabulary, splits, minibatches,
state and errors."""

from __future__ import annotations

import collections
import contextlib
import functools
import http.server
import re
import threading
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lightning_gru.data import (
    DataConfigError,
    IMDbDataModule,
    SourceUnreachableError,
    SubsequenceBatchSampler,
    TimeMachineDataModule,
)


def d2l_corpus(path, token: str = "char") -> tuple[list[str], list[str]]:
    """d2l 0.x ``load_corpus_time_machine``: (vocabulary tokens, corpus tokens)."""
    with open(path) as f:
        lines = [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in f.readlines()]
    tokens = [list(line) if token == "char" else line.split() for line in lines]
    counter = collections.Counter(t for line in tokens for t in line)
    by_freq = sorted(counter.items(), key=lambda x: x[1], reverse=True)
    return ["<unk>"] + [t for t, _ in by_freq], [t for line in tokens for t in line]


def make_dm(path, **kwargs) -> TimeMachineDataModule:
    kwargs = {"batch_size": 4, "num_steps": 5, **kwargs}
    dm = TimeMachineDataModule(data_file=str(path), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("token", ["char", "word"])
def test_vocab_and_corpus_follow_d2l(timemachine_file, token):
    vocab_tokens, corpus_tokens = d2l_corpus(timemachine_file, token)
    dm = make_dm(timemachine_file, token=token, max_tokens=-1)
    assert dm.vocab.idx_to_token == vocab_tokens and dm.vocab_size == len(vocab_tokens)
    corpus = torch.cat([torch.as_tensor(dm.train_corpus), torch.as_tensor(dm.val_corpus)])
    assert dm.vocab.to_tokens(corpus.tolist()) == corpus_tokens
    if token == "char":
        assert set(vocab_tokens) <= set("abcdefghijklmnopqrstuvwxyz ") | {"<unk>"}


def test_validation_is_the_tail_and_max_tokens_limits_training_only(timemachine_file):
    full = make_dm(timemachine_file, max_tokens=-1, val_fraction=0.2)
    n = len(full.train_corpus) + len(full.val_corpus)
    assert len(full.val_corpus) == round(0.2 * n)
    limited = make_dm(timemachine_file, max_tokens=60, val_fraction=0.2)
    assert limited.train_corpus.tolist() == full.train_corpus[:60].tolist()
    assert limited.val_corpus.tolist() == full.val_corpus.tolist()


@pytest.mark.parametrize("partition", ["random", "sequential"])
def test_batches_are_shifted_windows_of_the_training_text(timemachine_file, partition):
    dm = make_dm(timemachine_file, max_tokens=-1, partition=partition)
    text = "".join(dm.vocab.to_tokens(dm.train_corpus))
    batches = list(dm.train_dataloader())
    assert len(batches) == len(dm.train_dataloader()) > 3
    for X, Y in batches:
        assert X.shape == Y.shape == (4, 5) and X.dtype == Y.dtype == torch.long
        assert torch.equal(X[:, 1:], Y[:, :-1])
        assert all(dm.decode(row.tolist()) in text for row in torch.cat([X, Y[:, -1:]], 1))
    if partition == "sequential":  # row i of the next batch continues row i
        for (_, Y), (X_next, _) in zip(batches, batches[1:], strict=False):
            assert torch.equal(X_next[:, 0], Y[:, -1])


def test_batches_reproducible_under_seed_and_new_every_epoch(timemachine_file):
    def epochs(seed):
        loader = make_dm(timemachine_file, seed=seed).train_dataloader()
        return [[x.tolist() for x, _ in loader] for _ in range(2)]

    first = epochs(3)
    assert first == epochs(3) and first[0] != first[1] and first[0] != epochs(4)[0]


def test_validation_batches_are_fixed(timemachine_file):
    dm = make_dm(timemachine_file, max_tokens=-1, val_fraction=0.3)
    val = [x.tolist() for x, _ in dm.val_dataloader()]
    assert val == [x.tolist() for x, _ in dm.val_dataloader()]
    assert val[0][0] == dm.val_corpus[:5].tolist()  # offset 0, in order
    assert make_dm(timemachine_file, val_fraction=0.0).val_dataloader() == []


def test_encode_decode_and_state_dict_round_trip(tmp_path, timemachine_file):
    dm = make_dm(timemachine_file)
    assert dm.decode(dm.encode("The Time-Traveller ")) == "the time traveller "
    state = dm.state_dict()
    torch.save(state, tmp_path / "state.pt")
    assert torch.load(tmp_path / "state.pt", weights_only=True) == state
    fresh = TimeMachineDataModule(
        data_file=str(tmp_path / "absent.txt"), predict_prefixes=["time ", "the"], batch_size=1
    )
    fresh.load_state_dict(state)
    fresh.setup("predict")
    assert fresh.vocab == dm.vocab and fresh.encode("time") == dm.encode("time")
    assert list(fresh.predict_dataloader()) == [{"prefix": ["time "]}, {"prefix": ["the"]}]


def test_predicting_without_a_checkpoints_vocabulary_says_so(timemachine_file):
    """The vocabulary it builds is the model's only if the model was trained on that text."""
    dm = TimeMachineDataModule(data_file=str(timemachine_file), predict_prefixes=["time"])
    dm.setup("predict")
    with pytest.warns(UserWarning, match="predicts with a vocabulary built from its training"):
        assert list(dm.predict_dataloader()) == [{"prefix": ["time"]}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm.predict_dataloader()  # its vocabulary now: no warning


@pytest.mark.parametrize("token", ["char", "word"])
@pytest.mark.parametrize("prefix", ["42", "42!", " ", "--"])
def test_a_predict_prefix_without_letters_is_refused_in_setup(timemachine_file, token, prefix):
    """The text is read as lowercase letters and spaces: "42!" holds no word, and as
    characters it is one space, which the model would continue as if it were the prefix.
    Refused in ``setup``, which the command runs before Lightning starts a W&B run."""
    dm = make_dm(timemachine_file, token=token, predict_prefixes=["the time", prefix])
    with pytest.raises(ValueError, match=f"predict_prefixes: {prefix!r} holds no letter"):
        dm.setup("predict")
    with pytest.raises(ValueError, match="holds no letter"):
        dm.predict_dataloader()


def test_a_text_without_a_batch_is_refused_in_setup_and_by_its_loader(timemachine_file):
    """In ``setup``, which the command runs before Lightning starts a W&B run, for the texts
    that the stage reads; by the loaders too, as ``batch_size`` may change after ``setup``."""
    dm = TimeMachineDataModule(data_file=str(timemachine_file), batch_size=64, num_steps=100)
    with pytest.raises(ValueError, match="the training text: .* too few for one batch"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="the training text: .* too few for one batch"):
        dm.train_dataloader()
    # the training text has enough tokens, the validation text (its tail) not
    dm = TimeMachineDataModule(
        data_file=str(timemachine_file), batch_size=4, num_steps=20, val_fraction=0.05
    )
    dm.setup("fit")  # without a trainer, nothing says the validation text will be read
    with pytest.raises(ValueError, match="the validation text .* too few .* val_fraction"):
        dm.setup("validate")
    dm.trainer = SimpleNamespace(limit_val_batches=1.0)
    for stage in ("fit", "validate", None):
        with pytest.raises(ValueError, match="the validation text .* too few .* val_fraction"):
            dm.setup(stage)
    dm.trainer = SimpleNamespace(limit_val_batches=0)  # a trainer that validates nothing
    for stage in ("fit", "validate"):
        dm.setup(stage)
    dm.trainer = None
    assert len(dm.train_dataloader())
    with pytest.raises(ValueError, match="the validation text .* too few .* val_fraction"):
        dm.val_dataloader()
    dm.val_fraction, dm.train_corpus = 0.5, None  # (built again with the larger tail)
    dm.setup("fit")
    dm.batch_size = 10**6  # as the batch-size finder changes it, after setup
    with pytest.raises(ValueError, match="the training text: .* batch_size=1000000"):
        dm.train_dataloader()


def test_word_tokens_encode_and_decode_words(timemachine_file):
    dm = make_dm(timemachine_file, token="word", batch_size=2, num_steps=3)
    ids = dm.encode("the Time, machine")
    assert len(ids) == 3 and dm.decode(ids) == "the time machine"


def test_errors(tmp_path, timemachine_file):
    with pytest.raises(FileNotFoundError, match="data_file"):
        TimeMachineDataModule(data_file=str(tmp_path / "absent.txt")).prepare_data()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n 123 \n")
    with pytest.raises(ValueError, match=r"empty\.txt: the text has no letters"):
        TimeMachineDataModule(data_file=str(empty)).setup("fit")
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.txt: cannot be read as text files: no rows"):
        TimeMachineDataModule(data_file=str(empty), cache_dir=str(tmp_path)).setup("fit")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\u00e9 time\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt: cannot be read .* UnicodeDecodeError"):
        TimeMachineDataModule(data_file=str(latin1), cache_dir=str(tmp_path)).setup("fit")
    for name in ("batch_size", "num_steps"):
        with pytest.raises(ValueError, match=f"{name} must be >= 1, got 0"):
            TimeMachineDataModule(**{name: 0})
    with pytest.raises(ValueError, match="predict_prefixes"):
        TimeMachineDataModule().setup("predict")
    with pytest.raises(ValueError, match="partition"):
        TimeMachineDataModule(partition="shuffled")


@pytest.mark.parametrize("name", ["tm [1898].txt", "tm*.txt", "tm?.txt", "texts [v2]/tm.txt"])
def test_a_path_with_glob_characters_is_read_literally(tmp_path, timemachine_file, name):
    path = tmp_path / "texts" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(timemachine_file.read_bytes())
    (tmp_path / "texts" / "tmA.txt").write_text("zebras graze\n" * 50)  # "tm*.txt" matches it
    dm = make_dm(path, max_tokens=-1)
    reference = make_dm(timemachine_file, max_tokens=-1)
    assert dm.vocab == reference.vocab
    assert dm.train_corpus.tolist() == reference.train_corpus.tolist()


@contextlib.contextmanager
def serving(folder):
    """An HTTP server for the files of ``folder`` on 127.0.0.1 (a free port), in a thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join()


def test_a_downloaded_text_is_used_offline_once_the_server_is_gone(
    tmp_path, monkeypatch, timemachine_file
):
    import datasets.config

    def load(url):
        cache_dir = str(tmp_path / "cache")
        dm = TimeMachineDataModule(url=url, cache_dir=cache_dir, max_tokens=-1, batch_size=2)
        dm.prepare_data()
        dm.setup("fit")
        return dm

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    for variable in ("NO_PROXY", "no_proxy"):  # a proxy of the environment must not take it
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    with serving(timemachine_file.parent) as server:
        url = f"{server}/{timemachine_file.name}"
        online = load(url)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    offline = load(url)
    reference = make_dm(timemachine_file, max_tokens=-1)
    assert online.vocab == offline.vocab == reference.vocab
    assert offline.train_corpus.tolist() == reference.train_corpus.tolist()


def test_unreachable_url_says_how_to_load_a_local_file(tmp_path):
    dm = TimeMachineDataModule(cache_dir=str(tmp_path))
    with pytest.raises(SourceUnreachableError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert "timemachine.txt" in message and "data_file=" in message
    assert "HF_HUB_OFFLINE=1" in message


def test_random_partition_offsets_cover_0_to_num_steps_minus_1():
    """Random offsets in [0, num_steps) (d2l's ``randint(0, num_steps - 1)``):
    none dropped, none added, none ignored."""
    sampler = SubsequenceBatchSampler(100, 2, 4, "random", seed=0)
    offsets = {int(np.array(batches).min()) % 4 for batches in (list(sampler) for _ in range(60))}
    assert offsets == {0, 1, 2, 3}


def test_sequential_partition_offsets_cover_0_to_num_steps():
    """Sequential offsets in [0, num_steps]."""
    sampler = SubsequenceBatchSampler(100, 2, 4, "sequential", seed=0)
    offsets = {list(sampler)[0][0] for _ in range(80)}
    assert offsets == {0, 1, 2, 3, 4}


@pytest.mark.parametrize(
    "num_tokens, batch_size, num_steps, partition, shuffle, expected",
    [
        (100, 1, 5, "random", True, 19),  # the least favourable offset 4: (100 - 4 - 1) // 5
        (21, 1, 7, "sequential", False, 2),  # the last token is only a target: 20 // 7
        (21, 1, 7, "random", False, 2),
    ],
)
def test_every_epoch_has_the_batches_of_the_least_favourable_offset(
    num_tokens, batch_size, num_steps, partition, shuffle, expected
):
    """Guards against a random offset up to num_steps, and the last token counted as an input."""
    sampler = SubsequenceBatchSampler(num_tokens, batch_size, num_steps, partition, shuffle)
    assert len(sampler) == expected
    for _ in range(20):
        batches = list(sampler)
        assert len(batches) == expected
        assert max(s for b in batches for s in b) + num_steps < num_tokens  # targets fit


def test_random_partition_visits_subsequences_in_random_order():
    """Guards against: the random partition's subsequences in corpus order."""
    starts = np.array(list(SubsequenceBatchSampler(1000, 4, 7, "random", seed=0))).ravel()
    assert (np.diff(starts) != 7).any()


def test_the_validation_tail_is_the_rounded_fraction(timemachine_file):
    """Guards against: ``int`` instead of ``round`` for the validation tokens."""
    dm = make_dm(timemachine_file, max_tokens=-1, val_fraction=0.1)
    n = len(dm.train_corpus) + len(dm.val_corpus)
    fraction = next(f for f in (0.11, 0.13, 0.17, 0.19, 0.23) if (n * f) % 1 > 0.5)
    dm = make_dm(timemachine_file, max_tokens=-1, val_fraction=fraction)
    assert len(dm.val_corpus) == round(n * fraction) == int(n * fraction) + 1


def test_a_checkpoint_of_the_other_token_kind_re_encodes_the_corpora(timemachine_file):
    """Guards against: the checkpoint's token kind not restored, or corpora of the old kind kept."""
    dm = make_dm(timemachine_file, max_tokens=-1)
    words = make_dm(timemachine_file, max_tokens=-1, token="word")
    with pytest.warns(UserWarning, match=r"checkpoint's settings.*: token='word' \(not 'char'\)"):
        dm.load_state_dict(words.state_dict())
    assert dm.token == "word" and dm.separator == " "
    assert dm.hparams["token"] == "word"  # what the next checkpoint records
    X, _ = next(iter(dm.val_dataloader()))
    assert X[0].tolist() == words.val_corpus[:5].tolist()
    # the same vocabulary with another token kind: the corpora are built again, of words
    chars = make_dm(timemachine_file, max_tokens=-1)
    with pytest.warns(UserWarning, match="token='word'"):
        chars.load_state_dict({"token": "word", "vocab": chars.vocab.state_dict()})
    chars.setup("fit")
    assert len(chars.train_corpus) == len(words.train_corpus)


def test_a_checkpoint_of_an_unknown_token_kind_is_refused(timemachine_file):
    """Guards against: any token kind taken from a checkpoint (the constructor refuses it)."""
    dm = make_dm(timemachine_file, max_tokens=-1)
    state = dm.state_dict()
    with pytest.raises(ValueError, match=r"checkpoint token must be one of \('char', 'word'\)"):
        dm.load_state_dict({**state, "token": "bogus"})
    assert dm.token == "char" and dm.vocab is not None  # left as it was


def test_an_empty_predict_prefix_is_refused_in_setup():
    """Guards against: the empty-prefix check dropped (setup would accept it)."""
    dm = TimeMachineDataModule(predict_prefixes=["time", ""])
    with pytest.raises(DataConfigError, match="empty prefix"):
        dm.setup("predict")


def test_a_restored_vocabulary_survives_building_the_corpora(timemachine_file):
    """Guards against: ``_build`` replaces a checkpoint's vocabulary with one from the text."""
    dm = TimeMachineDataModule(data_file=str(timemachine_file), batch_size=2, num_steps=3)
    tokens = ["<unk>", " ", *"etaoinshrdlcumwfgypbvkjxqz"]
    dm.load_state_dict({"token": "char", "vocab": {"idx_to_token": tokens, "unk_token": "<unk>"}})
    dm.setup("fit")
    assert dm.vocab.idx_to_token == tokens
    assert dm.decode(dm.train_corpus[:3].tolist()) == "the"


def test_the_training_loader_starts_at_the_epoch_the_trainer_starts_next(timemachine_file):
    """Guards against: the training sampler not set to the trainer's epoch (a resumed fit
    would replay epoch 0's batches where a DataLoader with workers starts before
    ``set_epoch``)."""
    dm = make_dm(timemachine_file)
    first_epoch = [x.tolist() for x, _ in dm.train_dataloader()]
    sampler = SubsequenceBatchSampler(len(dm.train_corpus), 4, 5, "random", seed=42)
    third = [list(sampler) for _ in range(3)][2]
    progress = SimpleNamespace(current=SimpleNamespace(processed=2))
    dm.trainer = SimpleNamespace(
        fit_loop=SimpleNamespace(epoch_progress=progress), world_size=1, predicting=False
    )
    resumed = [x[:, 0].tolist() for x, _ in dm.train_dataloader()]
    assert resumed == [[int(dm.train_corpus[s]) for s in b] for b in third]
    assert resumed != [[row[0] for row in x] for x in first_epoch]


def test_prepare_data_reads_nothing_while_predicting(tmp_path):
    """Guards against: ``prepare_data`` reads the text while predicting, where the
    vocabulary comes from the checkpoint and the text may be absent."""
    predicting = SimpleNamespace(predicting=True, world_size=1)
    dm = TimeMachineDataModule(data_file=str(tmp_path / "absent.txt"))
    dm.trainer = predicting
    dm.prepare_data()
    imdb = IMDbDataModule(data_dir=str(tmp_path / "absent"))
    imdb.trainer = predicting
    imdb.prepare_data()


def test_a_state_saved_before_the_vocabulary_is_built_restores_nothing():
    """A checkpoint written before ``setup`` (``Trainer.save_checkpoint`` of a fresh run)."""
    empty = TimeMachineDataModule().state_dict()
    assert empty == {}
    data = TimeMachineDataModule(token="word")
    data.load_state_dict(empty)
    assert data.vocab is None and data.token == "word"
