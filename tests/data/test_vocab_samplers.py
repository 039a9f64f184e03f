"""Vocab ordering and limits; bucketing and d2l subsequence batch samplers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lightning_gru.data as data_pkg
from lightning_gru.data import (
    BucketBatchSampler,
    ShuffledBatchSampler,
    SubsequenceBatchSampler,
    Vocab,
    sine,
)


def test_package_exports_the_three_modules():
    for name in ("IMDbDataModule", "TimeMachineDataModule", "SineWaveDataModule"):
        assert name in data_pkg.__all__ and hasattr(data_pkg, name)


# -- Vocab ----------------------------------------------------------------------------------


def test_vocab_orders_reserved_then_by_frequency_with_stable_ties():
    counts = [("x", 2), ("a", 5), ("y", 2), ("b", 5), ("<unk>", 9)]
    vocab = Vocab(counts, reserved_tokens=["<pad>", "<unk>"])
    assert vocab.idx_to_token == ["<pad>", "<unk>", "a", "b", "x", "y"]
    assert vocab.token_to_idx == {t: i for i, t in enumerate(vocab.idx_to_token)}
    assert vocab.unk == 1 and vocab["never"] == 1 and "a" in vocab and "never" not in vocab


def test_vocab_min_freq_and_max_size_count_reserved_tokens():
    counts = [("a", 5), ("b", 4), ("c", 3), ("d", 1)]
    assert Vocab(counts, min_freq=3).idx_to_token == ["<unk>", "a", "b", "c"]
    assert Vocab(counts, max_size=3).idx_to_token == ["<unk>", "a", "b"]
    assert len(Vocab(counts, ["<pad>", "<unk>"], max_size=2)) == 2


def test_vocab_state_dict_round_trip_and_errors():
    vocab = Vocab([("a", 2), ("b", 1)], ["<pad>", "<unk>"])
    state = vocab.state_dict()
    assert state == {"idx_to_token": ["<pad>", "<unk>", "a", "b"], "unk_token": "<unk>"}
    assert Vocab.from_state_dict(state) == vocab
    with pytest.raises(ValueError, match="unk_token"):
        Vocab([], reserved_tokens=["<pad>"])
    with pytest.raises(ValueError, match="no room"):
        Vocab([], reserved_tokens=["<pad>", "<unk>"], max_size=1)
    # a checkpoint's vocabulary that lists a token twice would map it to its second id only
    with pytest.raises(ValueError, match="cannot list a token twice"):
        Vocab.from_state_dict({"idx_to_token": ["<unk>", "a", "a"], "unk_token": "<unk>"})


def test_vocab_repr_shows_its_size_and_first_tokens():
    assert repr(Vocab([("a", 2), ("b", 1)])) == "Vocab(size=3, tokens=['<unk>', 'a', 'b'])"
    many = Vocab([(str(i), 10 - i) for i in range(9)])
    assert repr(many) == "Vocab(size=10, tokens=['<unk>', '0', '1', '2', '3', '4', ...])"


# -- BucketBatchSampler ---------------------------------------------------------------------


def padding_fraction(lengths: np.ndarray, batches: list[list[int]]) -> float:
    padded = sum(len(b) * lengths[b].max() for b in batches)
    return 1 - lengths.sum() / padded


def test_bucketing_covers_every_example_once_and_keeps_padding_low():
    lengths = np.random.default_rng(0).integers(1, 500, size=5000)
    sampler = BucketBatchSampler(lengths, batch_size=32, bucket_batches=20, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 157
    assert sorted(i for b in batches for i in b) == list(range(5000))
    random_batches = np.random.default_rng(0).permutation(5000).reshape(-1, 40).tolist()
    assert padding_fraction(lengths, batches) < 0.08  # about 5 %
    assert padding_fraction(lengths, random_batches) > 0.4


def test_bucketing_is_reproducible_under_seed_and_changes_every_epoch():
    lengths = np.arange(1000) % 37 + 1

    def two_epochs(seed: int) -> list:
        sampler = BucketBatchSampler(lengths, 16, bucket_batches=5, seed=seed)
        return [list(sampler), list(sampler)]

    first, second = two_epochs(7)
    assert [first, second] == two_epochs(7)
    assert first != second and first != two_epochs(8)[0]
    sampler = BucketBatchSampler(lengths, 16, bucket_batches=5, seed=7)
    sampler.set_epoch(1)
    assert list(sampler) == second


def test_worker_processes_see_the_same_epochs():
    """A multi-worker DataLoader calls ``iter`` on its batch sampler twice per epoch."""
    from torch.utils.data import DataLoader

    def epochs(sampler, num_workers):
        loader = DataLoader(list(range(200)), batch_sampler=sampler, num_workers=num_workers)
        return [[b.tolist() for b in loader] for _ in range(2)]

    def samplers():
        return [
            BucketBatchSampler(np.arange(200) % 13, 16, bucket_batches=3, seed=5),
            SubsequenceBatchSampler(200, 4, 7, "random", seed=5),
        ]

    for one, two in zip(samplers(), samplers(), strict=True):
        assert epochs(one, 0) == epochs(two, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BucketBatchSampler(np.arange(100) % 9, 8, bucket_batches=2, seed=3),
        lambda: SubsequenceBatchSampler(100, 4, 5, "random", seed=3),
        lambda: ShuffledBatchSampler(100, 8, seed=3),
    ],
    ids=["bucket", "subsequence", "shuffled"],
)
def test_lightning_sets_the_epoch_of_every_batch_sampler(make):
    """Lightning calls ``set_epoch`` on ``loader.batch_sampler.sampler`` at each epoch start; a
    resumed run must get its epoch's batches, not the first epoch's."""
    from lightning.fabric.utilities.data import _set_sampler_epoch
    from torch.utils.data import DataLoader

    uninterrupted = make()
    epochs = [list(uninterrupted) for _ in range(3)]
    resumed = make()
    _set_sampler_epoch(DataLoader(list(range(100)), batch_sampler=resumed), 2)
    assert list(resumed) == epochs[2] != epochs[0]


def test_shuffled_batches_cover_every_example_once_per_epoch():
    sampler = ShuffledBatchSampler(10, 4, seed=1)
    first, second = list(sampler), list(sampler)
    assert [len(b) for b in first] == [4, 4, 2] and len(sampler) == 3
    assert sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(10))
    assert first != second
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        ShuffledBatchSampler(10, 0)


def test_bucketing_without_shuffle_sorts_and_drop_last_drops_the_short_batch():
    lengths = np.array([3, 1, 2, 5, 4])
    assert list(BucketBatchSampler(lengths, 2, shuffle=False)) == [[1, 2], [0, 4], [3]]
    sampler = BucketBatchSampler(lengths, 2, bucket_batches=1, drop_last=True)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2 and all(len(b) == 2 for b in batches)


# -- SubsequenceBatchSampler ----------------------------------------------------------------


def d2l_sequential(corpus: list[int], batch_size: int, num_steps: int, offset: int):
    """d2l 0.x ``seq_data_iter_sequential`` with its random offset given."""
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = torch.tensor(corpus[offset : offset + num_tokens]).reshape(batch_size, -1)
    Ys = torch.tensor(corpus[offset + 1 : offset + 1 + num_tokens]).reshape(batch_size, -1)
    for i in range(0, num_steps * (Xs.shape[1] // num_steps), num_steps):
        yield Xs[:, i : i + num_steps], Ys[:, i : i + num_steps]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sequential_batches_equal_d2l_and_continue_each_other(seed):
    corpus = list(range(1000))
    sampler = SubsequenceBatchSampler(1000, 4, 7, "sequential", seed=seed)
    batches = np.array(list(sampler))  # (num_batches, B) start positions
    offset = int(batches[0, 0])
    reference = [x[:, 0].tolist() for x, _ in d2l_sequential(corpus, 4, 7, offset)]
    assert 0 <= offset <= 7 and batches.tolist() == reference[: len(batches)]
    assert (np.diff(batches, axis=0) == 7).all()  # row i of batch k+1 continues row i of batch k
    assert len(sampler) == len(batches) == (1000 - 7 - 1) // 4 // 7


def test_random_batches_are_aligned_disjoint_and_reproducible():
    sampler = SubsequenceBatchSampler(1000, 4, 7, "random", seed=3)
    epochs = [np.array(list(sampler)) for _ in range(3)]
    for starts in epochs:
        flat = starts.ravel()
        assert starts.shape == (len(sampler), 4) and len(set(flat)) == flat.size
        assert len(set(flat % 7)) == 1 and flat.max() + 7 < 1000  # one offset; targets fit
    assert not np.array_equal(epochs[0], epochs[1])
    again = SubsequenceBatchSampler(1000, 4, 7, "random", seed=3)
    assert np.array_equal(np.array(list(again)), epochs[0])


def test_subsequence_sampler_rejects_a_corpus_too_short_for_one_batch():
    with pytest.raises(ValueError, match="too few"):
        SubsequenceBatchSampler(50, 4, 20, "sequential")


# -- download errors ------------------------------------------------------------------------


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "online"])
def test_fetch_explains_a_failed_download_in_one_sentence(monkeypatch, offline):
    import datasets.config

    from lightning_gru.data._common import fetch

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", offline)

    def unreachable():
        raise ConnectionError("Name or service not known")

    with pytest.raises(data_pkg.SourceUnreachableError) as err:
        fetch("'x/y' from the Hugging Face Hub", "pass data_dir= a folder", unreachable)
    message = str(err.value)
    assert message.count(". ") == 0 and message.endswith(".")
    assert "'x/y' from the Hugging Face Hub" in message and "pass data_dir= a folder" in message
    assert ("offline mode is on" in message) == offline
    assert "HF_HUB_OFFLINE=1" in message and "Name or service not known" in message
    assert isinstance(err.value.__cause__, ConnectionError)
    assert fetch("z", "hint", lambda: 42) == 42


@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(lambda: data_pkg.IMDbDataModule(val_fraction=1.0), r"\[0, 1\)", id="imdb-val"),
        pytest.param(lambda: data_pkg.IMDbDataModule(max_length=0), "-1", id="imdb-max-length"),
        pytest.param(lambda: data_pkg.TimeMachineDataModule(max_tokens=-2), "-1", id="tm-tokens"),
        pytest.param(lambda: data_pkg.SineWaveDataModule(train_fraction=0), r"\(0, 1\)", id="sine"),
    ],
)
def test_arguments_out_of_range_fail_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("saved", ["after-fit", "at-epoch-end"])
@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_resumed_fit_gets_the_batches_of_the_uninterrupted_one(tmp_path, num_workers, saved):
    """A DataLoader with workers starts a fit's first pass before Lightning calls
    ``set_epoch``: the training loaders start at the epoch the trainer starts next, or a
    resumed fit would replay an earlier epoch's batches. Checkpoints saved after ``fit`` and at
    the end of a training epoch (the command's ``last.ckpt``) restore different counters."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_gru.models import Forecaster

    class RecordBatches(L.Callback):
        def __init__(self) -> None:
            self.seen: list[list[float]] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self.seen.append(batch[0][:, 0, 0].tolist())  # the first value of every window

    def fit(max_epochs: int, ckpt_path: str | None = None) -> list[list[float]]:
        record = RecordBatches()
        last = ModelCheckpoint(
            tmp_path, "at-epoch-end", monitor=None, save_on_train_epoch_end=True,
            enable_version_counter=False,
        )  # fmt: skip
        trainer = L.Trainer(
            max_epochs=max_epochs, callbacks=[record, last], logger=False,
            enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        )  # fmt: skip
        data = sine.SineWaveDataModule(
            num_points=120, batch_size=16, num_workers=num_workers, val_fraction=0
        )  # four training windows, no validation
        trainer.fit(Forecaster(hidden_size=4), data, ckpt_path=ckpt_path)
        if ckpt_path is None:
            trainer.save_checkpoint(tmp_path / "after-fit.ckpt")
        return record.seen

    uninterrupted = fit(3)
    first = fit(1)
    resumed = fit(3, str(tmp_path / f"{saved}.ckpt"))
    assert first + resumed == uninterrupted
    assert resumed[: len(first)] != first  # epoch 1's batches differ from epoch 0's


def test_vocabularies_with_other_unk_tokens_differ():
    """Guards against: ``__eq__`` without the ``unk_token`` comparison."""
    tokens = [("a", 2)]
    assert Vocab(tokens, ["<pad>", "<unk>"], "<pad>") != Vocab(tokens, ["<pad>", "<unk>"], "<unk>")


def test_a_repeated_reserved_token_is_named():
    """Guards against: the check for repeated reserved tokens dropped (a later, vaguer error
    remains)."""
    with pytest.raises(ValueError, match="reserved_tokens repeat a token"):
        Vocab([("a", 1)], reserved_tokens=["<unk>", "<pad>", "<unk>"])


def test_drop_last_keeps_a_full_last_batch():
    """Guards against: ``len(batches[-1]) <= size`` drops a last batch that is full."""
    for shuffle in (False, True):
        sampler = BucketBatchSampler([3, 1, 2, 4], 2, drop_last=True, shuffle=shuffle)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 2
        assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]


def test_bucketed_batches_are_shuffled_not_in_length_order():
    """Guards against: the batches of a pass left in length order (only the examples shuffled)."""
    lengths = np.arange(200)
    for seed in range(3):
        batches = list(BucketBatchSampler(lengths, 10, bucket_batches=20, seed=seed))
        longest = [max(lengths[b]) for b in batches]
        assert longest != sorted(longest)


def test_evaluation_order_breaks_length_ties_by_index():
    """Guards against: an unstable sort: equal lengths must keep index order (a reproducible,
    documented evaluation order)."""
    lengths = np.arange(300) % 3
    batches = list(BucketBatchSampler(lengths, 50, shuffle=False))
    flat = [i for b in batches for i in b]
    assert flat == sorted(range(300), key=lambda i: (lengths[i], i))
