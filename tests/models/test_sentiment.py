"""``SentimentNet`` and ``SentimentClassifier`` on tiny synthetic reviews."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence
from torch.utils.data import DataLoader

from lightning_gru.models import SentimentClassifier, SentimentNet, load_word_vectors
from lightning_gru.models._common import Throughput, check_vocab_size
from lightning_gru.models.sentiment import pad_packed_rows, pool_outputs, pool_packed

VOCAB = {"<pad>": 0, "<unk>": 1, "good": 2, "bad": 3, "film": 4, "the": 5}


def collate(examples):
    ids = [torch.tensor(e[0]) for e in examples]
    return {
        "input_ids": pad_sequence(ids, batch_first=True),  # (B, T)
        "lengths": torch.tensor([len(i) for i in ids]),
        "labels": torch.tensor([e[1] for e in examples]),
        "text": [" ".join(str(t) for t in e[0]) for e in examples],
    }


class ToyReviews(L.LightningDataModule):
    """'good' reviews are positive, 'bad' ones negative, with filler words of random length."""

    def __init__(self, n: int = 64, batch_size: int = 16) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.examples = []
        for i in range(n):
            label = i % 2
            filler = torch.randint(
                4, 6, (int(torch.randint(1, 8, (1,), generator=g)),), generator=g
            )
            self.examples.append(([2 if label else 3, *filler.tolist()], label))
        self.batch_size = batch_size
        self.vocab = SimpleNamespace(token_to_idx=VOCAB)
        self.class_names = ["neg", "pos"]

    def _loader(self, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            self.examples, batch_size=self.batch_size, shuffle=shuffle, collate_fn=collate
        )

    def train_dataloader(self):
        return self._loader(shuffle=True)

    def val_dataloader(self):
        return self._loader()

    def test_dataloader(self):
        return self._loader()

    def predict_dataloader(self):
        return self._loader()


@pytest.mark.parametrize("encoder", ["gru", "lstm", "rnn", "bow"])
@pytest.mark.parametrize(
    "bidirectional, packed", [(False, True), (True, True), (False, False)],
    ids=["uni", "bi", "uni-padded"],
)  # fmt: skip
@pytest.mark.parametrize("pooling", ["last", "max", "mean", "max_mean"])
def test_padding_never_reaches_the_output(encoder, bidirectional, packed, pooling):
    torch.manual_seed(0)
    net = SentimentNet(
        10, 6, encoder, hidden_size=5, num_layers=2, bidirectional=bidirectional,
        pooling=pooling, packed=packed,
    ).eval()  # fmt: skip
    short = torch.tensor([[2, 4, 5]])
    padded = torch.tensor([[2, 4, 5, 7, 8, 9], [2, 4, 5, 3, 3, 3]])  # junk after the length
    alone = net(short, torch.tensor([3]))
    together = net(padded, torch.tensor([3, 6]))
    torch.testing.assert_close(together[0], alone[0])


def test_pooling_over_the_outputs():
    torch.manual_seed(0)
    net = SentimentNet(10, 6, "gru", hidden_size=5, bidirectional=True, pooling="max_mean")
    assert net.head.in_features == 2 * 2 * 5
    ids, lengths = torch.tensor([[2, 4, 5, 0], [3, 1, 7, 9]]), torch.tensor([3, 4])
    captured = {}
    net.head.register_forward_hook(lambda module, args, out: captured.update(x=args[0]))
    net.eval()(ids, lengths)
    outputs, _ = net.encoder(net.embedding(ids[:1, :3]))  # (1, 3, 2 * 5), the first review alone
    expected = torch.cat([outputs.amax(1), outputs.mean(1)], dim=-1)[0]
    torch.testing.assert_close(captured["x"][0], expected)
    with pytest.raises(ValueError, match="pooling must be one of"):
        SentimentNet(10, 6, "gru", pooling="sum")
    with pytest.raises(ValueError, match="embedding_dim must be >= 1, got 0"):
        SentimentNet(10, 0, "gru")


def _pad_then_pool(packed, lengths, pooling):
    return pool_outputs(pad_packed_sequence(packed, batch_first=True)[0], lengths, pooling)


@pytest.mark.parametrize("enforce_sorted", [False, True], ids=["unsorted", "sorted"])
@pytest.mark.parametrize("pooling", ["max", "mean", "max_mean"])
def test_pooling_packed_rows_is_pooling_the_padded_batch(pooling, enforce_sorted):
    """``pool_packed`` (no padded copy) gives the very numbers, and gradients, of torch's
    ``pad_packed_sequence`` followed by ``pool_outputs``: the recipes' results do not move."""
    gen = torch.Generator().manual_seed(0)
    for trial in range(10):
        B = int(torch.randint(1, 9, (), generator=gen))
        T = int(torch.randint(1, 12, (), generator=gen))
        lengths = torch.randint(1, T + 1, (B,), generator=gen)
        lengths[0] = T
        if enforce_sorted:
            lengths = lengths.sort(descending=True).values
        x = torch.randn(B, T, 5, generator=gen)
        if trial % 2:
            x = x.round()  # ties for the maximum: the gradient split among them alike
        results = []
        for pool in (_pad_then_pool, pool_packed):
            leaf = x.clone().requires_grad_()
            packed = pack_padded_sequence(leaf * 2, lengths, True, enforce_sorted)
            pooled = pool(packed, lengths, pooling)
            (pooled * torch.arange(pooled.numel()).view_as(pooled)).sum().backward()
            results.append((pooled, leaf.grad))
        assert torch.equal(results[1][0], results[0][0])
        assert torch.equal(results[1][1], results[0][1])
        padded = pad_packed_sequence(packed, batch_first=True, padding_value=-7.0)[0]
        assert torch.equal(pad_packed_rows(packed, -7.0), padded)
    with pytest.raises(ValueError, match="max, mean or max_mean"):
        pool_packed(packed, lengths, "last")


@pytest.mark.parametrize("encoder", ["gru", "lstm"])
def test_padded_batches_give_the_packed_results(encoder):
    torch.manual_seed(0)
    packed = SentimentNet(10, 6, encoder, hidden_size=5, num_layers=2, pooling="max_mean").eval()
    padded = SentimentNet(
        10, 6, encoder, hidden_size=5, num_layers=2, pooling="max_mean", packed=False
    )
    padded.load_state_dict(packed.state_dict())
    ids, lengths = torch.tensor([[2, 4, 5, 0, 0], [3, 1, 7, 9, 8]]), torch.tensor([3, 5])
    torch.testing.assert_close(padded.eval()(ids, lengths), packed(ids, lengths))
    with pytest.raises(ValueError, match="packed=False needs bidirectional=False"):
        SentimentNet(10, 6, encoder, bidirectional=True, packed=False)


@pytest.mark.parametrize("encoder", ["gru", "bow"])
@pytest.mark.parametrize(
    ("ids_shape", "lengths", "message"),
    [
        ((2, 5), [5, 6], "lengths must be 0 to 5 .* got 5 to 6"),
        ((2, 5), [-1, 3], "got -1 to 3"),
        ((3, 5), [2, 5], r"expected 3 lengths, one per sequence, got shape \(2,\)"),
        ((5,), [5], r"expected \(batch, time\) token ids, got shape \(5,\)"),
    ],
)
def test_lengths_that_do_not_fit_the_ids_are_refused(encoder, ids_shape, lengths, message):
    """Not clamped, not a silently shorter batch of logits."""
    net = SentimentNet(50, 8, encoder, hidden_size=4)
    with pytest.raises(ValueError, match=message):
        net(torch.randint(1, 50, ids_shape), torch.tensor(lengths))


def test_load_word_vectors(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("6 3\ngood 1 2 3\nbad -1 -2 -3.5\nunknownword 9 9 9\n")
    weight = torch.zeros(len(VOCAB), 3)
    assert load_word_vectors(path, VOCAB, weight, progress=False) == 2
    torch.testing.assert_close(weight[2], torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(weight[3], torch.tensor([-1.0, -2.0, -3.5]))
    assert weight[[0, 1, 4, 5]].abs().sum() == 0
    with pytest.raises(ValueError, match="expected 4"):
        load_word_vectors(path, VOCAB, torch.zeros(len(VOCAB), 4), progress=False)
    with pytest.raises(ValueError, match="'good' has 3 numbers, expected 2"):
        load_word_vectors(path, VOCAB, torch.zeros(len(VOCAB), 2), progress=False)


def test_a_word2vec_header_whose_count_is_a_known_token_is_skipped(tmp_path):
    """IMDb's vocabulary holds numbers ("10", as in "10/10"): the header "10 3" is no vector
    of the token "10" with one number, and a later line of that token is read."""
    path = tmp_path / "vectors.txt"
    path.write_text("10 3\ngood 1 2 3\n10 4 5 6\n")
    weight = torch.zeros(3, 3)
    assert load_word_vectors(path, {"<pad>": 0, "10": 1, "good": 2}, weight, progress=False) == 2
    torch.testing.assert_close(weight[1], torch.tensor([4.0, 5.0, 6.0]))
    path.write_text("good 1 2 3\n10 3\n")  # after a vector it is a short vector, not a header
    with pytest.raises(ValueError, match="'10' has 1 numbers, expected 3"):
        load_word_vectors(path, {"<pad>": 0, "10": 1, "good": 2}, weight, progress=False)


def test_load_word_vectors_reads_tokens_with_spaces(tmp_path):
    """glove.840B has tokens such as ". . ."; their lines are no vectors of the wrong size."""
    path = tmp_path / "vectors.txt"
    path.write_text(". . . 7 8 9\ngood 1 2 3\nthe film 4 5 6\n")
    weight = torch.zeros(len(VOCAB) + 1, 3)
    vocab = {**VOCAB, ".": len(VOCAB), "the film": 4}
    assert load_word_vectors(path, vocab, weight, progress=False) == 2
    torch.testing.assert_close(weight[2], torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(weight[4], torch.tensor([4.0, 5.0, 6.0]))
    assert weight[len(VOCAB)].abs().sum() == 0  # "." is not ". . ."


def test_embedding_file_initialises_the_embedding_at_fit(tmp_path, make_trainer):
    path = tmp_path / "vectors.txt"
    path.write_text("good 1 2 3\nbad -1 -2 -3\n")
    model = SentimentClassifier(
        len(VOCAB), embedding_dim=3, hidden_size=4, embedding_file=str(path), freeze_embedding=True
    )
    make_trainer(fast_dev_run=True).fit(model, ToyReviews())
    torch.testing.assert_close(model.net.embedding.weight[2], torch.tensor([1.0, 2.0, 3.0]))
    assert not model.net.embedding.weight.requires_grad


def test_embedding_file_is_read_into_a_new_model_only(tmp_path, make_trainer):
    """A second fit, or a fit of a model loaded from a checkpoint, keeps the embedding it has
    (trained, or restored; a frozen one here, set by hand) and no longer needs the file."""
    path = tmp_path / "vectors.txt"
    path.write_text("good 1 2 3\nbad -1 -2 -3\n")
    vectors = dict(embedding_dim=3, embedding_file=str(path), freeze_embedding=True)
    model = SentimentClassifier(len(VOCAB), hidden_size=4, **vectors)
    trainer = make_trainer(fast_dev_run=True)
    trainer.fit(model, ToyReviews())
    with torch.no_grad():
        model.net.embedding.weight.fill_(7.0)  # as if trained
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    path.unlink()
    make_trainer(fast_dev_run=True).fit(model, ToyReviews())
    assert bool((model.net.embedding.weight == 7.0).all())
    loaded = SentimentClassifier.load_from_checkpoint(tmp_path / "model.ckpt")
    make_trainer(fast_dev_run=True).fit(loaded, ToyReviews())
    assert bool((loaded.net.embedding.weight == 7.0).all())
    resumed = SentimentClassifier(len(VOCAB), hidden_size=4, **vectors)  # setup, then the restore
    trainer = make_trainer(max_epochs=2, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(resumed, ToyReviews(), ckpt_path=tmp_path / "model.ckpt")
    assert bool((resumed.net.embedding.weight == 7.0).all())


def test_learns_the_toy_task_and_logs_metrics(tmp_path, make_trainer):
    torch.manual_seed(0)
    optimizer = partial(torch.optim.Adam, lr=0.05)
    model = SentimentClassifier(len(VOCAB), embedding_dim=8, hidden_size=8, optimizer=optimizer)
    data = ToyReviews()
    trainer = make_trainer(max_epochs=12, check_val_every_n_epoch=4)
    trainer.fit(model, data)
    metrics = trainer.callback_metrics
    assert {
        "train_loss_epoch",
        "train_acc",
        "train_f1",
        "val_loss",
        "val_acc",
        "val_f1",
    } <= metrics.keys()
    assert metrics["train_samples_per_sec"] > 0
    assert (tmp_path / "confusion_matrix_val.png").is_file()
    result = trainer.test(model, data, verbose=False)[0]
    assert result["test_acc"] == 1.0 and result["test_f1"] == 1.0
    assert (tmp_path / "confusion_matrix_test.png").is_file()

    predictions = [row for batch in trainer.predict(model, data) for row in batch]
    assert len(predictions) == 64
    for row, (_, label) in zip(predictions, data.examples, strict=True):
        assert row["label"] == ["neg", "pos"][label]
        assert 0.5 <= row["probability"] <= 1.0


def test_checkpoint_round_trip(tmp_path, make_trainer):
    model = SentimentClassifier(
        len(VOCAB), class_names=["bad", "good"], embedding_dim=4, hidden_size=4, encoder="lstm"
    )
    trainer = make_trainer(fast_dev_run=True)
    trainer.fit(model, ToyReviews())
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = SentimentClassifier.load_from_checkpoint(tmp_path / "m.ckpt")
    assert loaded.class_names == ["bad", "good"] and loaded.hparams.encoder == "lstm"
    batch = collate(ToyReviews().examples[:4])
    model.eval(), loaded.eval()
    torch.testing.assert_close(
        loaded(batch["input_ids"], batch["lengths"]), model(batch["input_ids"], batch["lengths"])
    )


@pytest.mark.parametrize("stage", ["fit", "validate", "test", "predict"])
def test_a_vocabulary_larger_than_the_model_is_refused(make_trainer, stage):
    data = ToyReviews()
    data.vocab_size = len(VOCAB)
    run = getattr(make_trainer(fast_dev_run=True), stage)
    with pytest.raises(ValueError, match=f"vocab_size=2 is smaller .* {len(VOCAB)} tokens"):
        run(SentimentClassifier(2, embedding_dim=4, hidden_size=4), datamodule=data)


class ArgumentsVocabulary(ToyReviews):
    """A vocabulary of ``vocab_size`` tokens as built from its arguments, until a checkpoint
    restores the one a model was trained on (as the IMDb data module's is)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def state_dict(self):
        return {"vocab_size": self.vocab_size}

    def load_state_dict(self, state) -> None:
        self.vocab_size = state["vocab_size"]


@pytest.mark.parametrize("stage", ["fit", "validate", "test", "predict"])
def test_the_vocabulary_is_checked_once_a_checkpoint_restored_it(tmp_path, make_trainer, stage):
    """Data module arguments that build a larger vocabulary than the checkpoint's: the
    checkpoint's wins (Lightning restores it after ``setup``), so the model fits it."""
    model = SentimentClassifier(len(VOCAB), embedding_dim=4, hidden_size=4)
    trainer = make_trainer(fast_dev_run=True)
    trainer.fit(model, ArgumentsVocabulary(len(VOCAB)))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    data = ArgumentsVocabulary(len(VOCAB) + 10)
    run = getattr(make_trainer(max_epochs=2, limit_train_batches=1, limit_val_batches=1), stage)
    run(SentimentClassifier(len(VOCAB), embedding_dim=4, hidden_size=4), datamodule=data,
        ckpt_path=tmp_path / "m.ckpt")  # fmt: skip
    assert data.vocab_size == len(VOCAB)


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
def test_an_empty_review_is_read_as_its_first_padding_token(packed):
    torch.manual_seed(0)
    net = SentimentNet(20, 4, "gru", hidden_size=5, packed=packed).eval()
    ids = torch.tensor([[3, 4, 5], [0, 0, 0]])
    logits = net(ids, torch.tensor([3, 0]))
    torch.testing.assert_close(logits, net(ids, torch.tensor([3, 1])))


def test_load_word_vectors_refuses_a_one_number_vector_after_the_first(tmp_path):
    """A line of one number is skipped as a word2vec header only before any vector was read;
    later, a known token with one number is a vector of the wrong size."""
    path = tmp_path / "vectors.txt"
    path.write_text("good 1 2 3\nbad 4\n", encoding="utf-8")
    weight = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="'bad' has 1 numbers, expected 3"):
        load_word_vectors(path, {"good": 1, "bad": 2}, weight, progress=False)


@pytest.mark.parametrize("data_vocab", [5, 6])
def test_a_vocabulary_one_token_larger_than_the_model_is_refused(data_vocab):
    data = SimpleNamespace(vocab=object(), vocab_size=data_vocab)
    module = SimpleNamespace(
        _trainer=SimpleNamespace(datamodule=data), hparams=SimpleNamespace(vocab_size=5)
    )
    if data_vocab == 5:
        check_vocab_size(module)  # the same size is fine
    else:
        with pytest.raises(ValueError, match="vocab_size=5 is smaller than the data"):
            check_vocab_size(module)


def test_a_stop_without_a_start_counts_nothing():
    clock = Throughput()
    clock.start()
    clock.stop(10)
    seconds = clock.seconds
    clock.stop(10)  # no start since the last stop: ignored
    assert (clock.items, clock.seconds) == (10, seconds)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("good nan 1\n", r"line 2, 'good': a value is not a finite number: nan 1"),
        ("good 1 inf\n", r"line 2, 'good': a value is not a finite number: 1 inf"),
        ("good 1 x\n", r"line 2, 'good': could not convert string to float: 'x'"),
    ],
)
def test_load_word_vectors_refuses_a_value_that_is_not_a_finite_number(tmp_path, line, message):
    """Guards against: a ``nan`` copied into the embedding, which made every weight NaN at the
    first training step (silently: the fit ran on with NaN losses); a non-number failing with
    a bare "could not convert string to float", naming neither the file nor the line."""
    path = tmp_path / "vectors.txt"
    path.write_text("bad 1 2\n" + line)
    with pytest.raises(ValueError, match=f"vectors.txt: {message}"):
        load_word_vectors(path, VOCAB, torch.zeros(len(VOCAB), 2), progress=False)
    path.write_text("bad 1 2\nunknown nan x\n")  # the line of a token not in the vocabulary
    assert load_word_vectors(path, VOCAB, torch.zeros(len(VOCAB), 2), progress=False) == 1


def test_load_word_vectors_names_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_bytes("caf\xe9 1 2\n".encode("latin-1"))
    with pytest.raises(ValueError, match="vectors.txt: cannot be read as UTF-8 text"):
        load_word_vectors(path, VOCAB, torch.zeros(len(VOCAB), 2), progress=False)


@pytest.mark.parametrize(
    ("class_names", "error", "message"),
    [
        ("neg", TypeError, r"class_names must be a list of str, got str"),
        (["only"], ValueError, r"class_names must name at least 2 classes, got \['only'\]"),
        ([], ValueError, r"class_names must name at least 2 classes, got \[\]"),
    ],
)
def test_class_names_that_cannot_name_two_classes_are_refused(class_names, error, message):
    """Guards against: ``class_names="neg"`` building a model of three classes ``n``, ``e``,
    ``g``; one or no class failing in torchmetrics with "Expected argument `num_classes` to be
    an integer larger than 1"."""
    with pytest.raises(error, match=message):
        SentimentClassifier(vocab_size=6, class_names=class_names)


@pytest.mark.parametrize("vocab_size", [0, -5])
def test_an_empty_vocabulary_is_refused_by_name(vocab_size):
    """Guards against: torch's IndexError ("index 0 is out of bounds for dimension 0 with size
    0") or "Trying to create tensor with negative dimension"."""
    with pytest.raises(ValueError, match=f"vocab_size must be >= 1, got {vocab_size}"):
        SentimentClassifier(vocab_size=vocab_size)


def test_a_plateau_scheduler_is_refused_when_the_data_holds_no_validation(make_trainer):
    """Guards against: the fit ending after its first epoch with Lightning's "ReduceLROnPlateau
    conditioned on metric val_loss which is not available" (an IMDb module with
    ``val_fraction=0`` gives no validation dataloader, as here)."""

    class NoValidation(ToyReviews):
        def val_dataloader(self):
            return []

    plateau = partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0)
    model = SentimentClassifier(vocab_size=6, embedding_dim=4, hidden_size=4, lr_scheduler=plateau)
    trainer = make_trainer(max_epochs=2)
    with pytest.raises(ValueError, match="ReduceLROnPlateau watches val_loss, and the validat"):
        trainer.fit(model, NoValidation())
    assert trainer.global_step == 0
