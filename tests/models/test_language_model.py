"""``LanguageModelNet`` and ``LanguageModel``: state carrying, perplexity, generation."""

from __future__ import annotations

import csv
import math
from functools import partial

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from lightning_gru.data import TimeMachineDataModule
from lightning_gru.models import LanguageModel, LanguageModelNet
from lightning_gru.models.callbacks import LearningCurves

V = 5


class ToyText(L.LightningDataModule):
    """Batches ``(X, Y)`` of a repeating sequence, with a ``partition`` and a tokenizer over
    the characters ``' abcd'``."""

    def __init__(self, partition: str = "sequential", batches: int = 3, B: int = 4, T: int = 6):
        super().__init__()
        self.partition = partition
        corpus = torch.arange(B * T * batches + 1) % V
        X, Y = corpus[:-1].reshape(batches, B, T), corpus[1:].reshape(batches, B, T)
        self.batches = list(zip(X, Y, strict=True))

    def train_dataloader(self):
        return DataLoader(self.batches, batch_size=None)

    def val_dataloader(self):
        return DataLoader(self.batches[:1], batch_size=None)

    def predict_dataloader(self):
        return DataLoader([{"prefix": ["ab", "c"]}], batch_size=None)

    def encode(self, text: str) -> list[int]:
        return [max(" abcd".find(c), 0) for c in text]  # unknown characters: space

    def decode(self, ids: list[int]) -> str:
        return "".join(" abcd"[i] for i in ids)


@pytest.mark.parametrize("encoder", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("embedding_dim", [None, 3], ids=["one-hot", "embedding"])
def test_net_shapes(encoder, embedding_dim):
    net = LanguageModelNet(V, encoder, hidden_size=4, num_layers=2, embedding_dim=embedding_dim)
    logits, state = net(torch.randint(0, V, (2, 7)))
    assert logits.shape == (2, 7, V)
    h = state[0] if encoder == "lstm" else state
    assert h.shape == (2, 2, 4)


def test_net_refuses_an_empty_embedding_and_ids_without_a_batch():
    with pytest.raises(ValueError, match="embedding_dim must be >= 1, or None for one-hot"):
        LanguageModelNet(V, "gru", hidden_size=4, embedding_dim=0)
    with pytest.raises(ValueError, match=r"expected \(batch, time\) token ids, got shape \(7,\)"):
        LanguageModelNet(V, "gru", hidden_size=4)(torch.randint(0, V, (7,)))


@pytest.mark.parametrize("encoder", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("embedding_dim", [None, 3], ids=["one-hot", "embedding"])
def test_init_std_draws_every_weight_and_zeroes_every_bias(encoder, embedding_dim):
    torch.manual_seed(0)
    net = LanguageModelNet(V, encoder, 64, num_layers=2, embedding_dim=embedding_dim, init_std=0.01)
    weights = [p for n, p in net.named_parameters() if "bias" not in n]
    biases = [p for n, p in net.named_parameters() if "bias" in n]
    assert len(biases) == 5  # two per layer, the head's
    assert all(not b.any() for b in biases)
    drawn = torch.cat([w.flatten() for w in weights])
    assert drawn.std().item() == pytest.approx(0.01, rel=0.05)
    assert drawn.mean().abs().item() < 1e-3


def test_init_std_none_keeps_pytorchs_initialisation():
    torch.manual_seed(0)
    default = LanguageModelNet(V, "rnn", hidden_size=64)
    torch.manual_seed(0)
    same = LanguageModelNet(V, "rnn", hidden_size=64, init_std=None)
    for a, b in zip(default.state_dict().values(), same.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert default.head.bias.any()  # PyTorch draws biases; init_std zeroes them


@pytest.mark.parametrize("init_std", [0.0, -0.01, float("nan")])
def test_init_std_must_be_positive(init_std):
    with pytest.raises(ValueError, match="init_std must be > 0, or None"):
        LanguageModelNet(V, "rnn", hidden_size=4, init_std=init_std)


@pytest.mark.parametrize("encoder", ["gru", "lstm"])
def test_net_logits_of_a_row_depend_only_on_that_row(encoder):
    """The net runs time-major inside; batch row b of its logits is sequence b alone."""
    torch.manual_seed(0)
    net = LanguageModelNet(V, encoder, hidden_size=4).eval()
    ids = torch.randint(0, V, (3, 6))
    logits, _ = net(ids)
    for b in range(3):
        alone, _ = net(ids[b : b + 1])
        torch.testing.assert_close(logits[b : b + 1], alone)


def record_states(model: LanguageModel) -> list:
    """Wrap ``model.net.forward`` to record the state each training call starts from."""
    seen, forward = [], model.net.forward

    def spy(ids, state=None):
        if model.training:
            seen.append(state)
        return forward(ids, state)

    model.net.forward = spy
    return seen


@pytest.mark.parametrize("encoder", ["gru", "lstm"])
def test_sequential_partition_carries_a_detached_state(make_trainer, encoder):
    model = LanguageModel(V, encoder, hidden_size=4, num_generate=3)
    seen = record_states(model)
    make_trainer(max_epochs=2, num_sanity_val_steps=0).fit(model, ToyText("sequential"))
    assert [s is None for s in seen] == [True, False, False] * 2  # reset at every epoch start
    for state in seen[1:3]:
        for tensor in state if isinstance(state, tuple) else (state,):
            assert not tensor.requires_grad


def test_random_partition_resets_the_state(make_trainer):
    model = LanguageModel(V, hidden_size=4, num_generate=3)
    seen = record_states(model)
    make_trainer(max_epochs=2, num_sanity_val_steps=0).fit(model, ToyText("random"))
    assert seen == [None] * 6


def test_carry_state_argument_overrides_the_partition(make_trainer):
    model = LanguageModel(V, hidden_size=4, carry_state=False, num_generate=3)
    seen = record_states(model)
    make_trainer(num_sanity_val_steps=0).fit(model, ToyText("sequential"))
    assert seen == [None] * 3


def test_logs_perplexity_and_throughput(make_trainer):
    model = LanguageModel(V, hidden_size=4, num_generate=3)
    trainer = make_trainer(max_epochs=1, num_sanity_val_steps=0)
    trainer.fit(model, ToyText("random", batches=1))
    metrics = trainer.callback_metrics
    torch.testing.assert_close(metrics["val_ppl"], metrics["val_loss"].exp(), rtol=1e-5, atol=0)
    torch.testing.assert_close(
        metrics["train_ppl"], metrics["train_loss_epoch"].exp(), rtol=1e-5, atol=0
    )
    assert metrics["train_tokens_per_sec"] > 0


def test_training_perplexity_is_each_epochs_own(make_trainer):
    """Logged once per epoch (on its last batch), it still covers every batch of that epoch
    and only that epoch: the exponential of the epoch's mean training loss, epoch after epoch."""
    torch.manual_seed(0)
    optimizer = partial(torch.optim.Adam, lr=0.05)  # the loss moves between epochs
    model = LanguageModel(V, hidden_size=8, num_generate=3, optimizer=optimizer)
    curves = LearningCurves()
    trainer = make_trainer(max_epochs=3, num_sanity_val_steps=0, callbacks=[curves])
    trainer.fit(model, ToyText("random", batches=3))
    losses, ppls = curves.history["train_loss"], curves.history["train_ppl"]
    assert [epoch for epoch, _ in ppls] == [0, 1, 2]
    assert losses[0][1] != pytest.approx(losses[2][1])
    for (_, loss), (_, ppl) in zip(losses, ppls, strict=True):
        assert ppl == pytest.approx(math.exp(loss), rel=1e-5)


class NaNAtLastBatch(L.Callback):
    """Makes the output layer's bias NaN before the epoch's last batch: a diverged step."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == trainer.num_training_batches - 1:
            with torch.no_grad():
                next(p for name, p in module.named_parameters() if name.endswith("bias")).fill_(
                    float("nan")
                )


def test_a_diverged_step_makes_the_training_perplexity_nan(make_trainer):
    """Not a mean over the steps that stayed finite: that would look healthy."""
    model = LanguageModel(V, hidden_size=4, num_generate=3)
    trainer = make_trainer(max_epochs=1, num_sanity_val_steps=0, callbacks=[NaNAtLastBatch()])
    trainer.fit(model, ToyText("random", batches=3))
    assert trainer.callback_metrics["train_loss_epoch"].isnan()
    assert trainer.callback_metrics["train_ppl"].isnan()


class StepLosses(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def test_training_losses_reach_the_logger_as_before(tmp_path, make_trainer):
    """The step loss at every ``log_every_n_steps``-th step (what the logger writes), and per
    epoch the mean of that epoch's step losses (equal batches: the mean over its tokens)."""
    torch.manual_seed(0)
    optimizer = partial(torch.optim.Adam, lr=0.05)
    model = LanguageModel(V, hidden_size=8, num_generate=3, optimizer=optimizer)
    steps = StepLosses()
    logger = CSVLogger(tmp_path)
    trainer = make_trainer(
        max_epochs=2, num_sanity_val_steps=0, callbacks=[steps], logger=logger, log_every_n_steps=2
    )
    trainer.fit(model, ToyText("random", batches=3))
    rows = list(csv.DictReader(open(f"{logger.log_dir}/metrics.csv")))
    logged_steps = [float(r["train_loss_step"]) for r in rows if r.get("train_loss_step")]
    assert logged_steps == pytest.approx(steps.losses[1::2], rel=1e-6)  # steps 2, 4, 6
    epochs = [float(r["train_loss_epoch"]) for r in rows if r.get("train_loss_epoch")]
    means = [sum(steps.losses[i : i + 3]) / 3 for i in (0, 3)]
    assert epochs == pytest.approx(means, rel=1e-5)
    assert means[0] != pytest.approx(means[1])


def test_training_loss_is_the_mean_over_the_epochs_tokens(make_trainer):
    """Batches of unequal sizes weigh by their tokens, not one step one vote."""
    torch.manual_seed(0)
    data = ToyText("random", batches=2)
    X, Y = data.batches[1]
    data.batches[1] = (X[:1], Y[:1])  # 4 rows, then 1
    model = LanguageModel(V, hidden_size=4, num_generate=3)
    steps = StepLosses()
    trainer = make_trainer(max_epochs=1, num_sanity_val_steps=0, callbacks=[steps])
    trainer.fit(model, data)
    (big, small), tokens = steps.losses, [X.numel(), Y[:1].numel()]
    expected = (big * tokens[0] + small * tokens[1]) / sum(tokens)
    assert big != pytest.approx(small)
    metrics = trainer.callback_metrics
    assert float(metrics["train_loss_epoch"]) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["train_ppl"]) == pytest.approx(math.exp(expected), rel=1e-5)


def test_validation_perplexity_survives_a_target_float32_cannot_hold(make_trainer):
    """A target token with probability e^-120 (below float32's least) among many near 1: the
    perplexity is the exponential of the mean cross-entropy, not inf."""
    model = LanguageModel(3, hidden_size=4, embedding_dim=2, carry_state=False)
    with torch.no_grad():  # logits (60, -60, 0) whatever the input
        model.net.head.weight.zero_()
        model.net.head.bias.copy_(torch.tensor([60.0, -60.0, 0.0]))
    X, Y = torch.zeros(2, 8, 10, dtype=torch.long), torch.zeros(2, 8, 10, dtype=torch.long)
    Y[0, 0, 0] = 1
    batches = DataLoader(list(zip(X, Y, strict=True)), batch_size=None)
    results = make_trainer().validate(model, batches)[0]
    assert math.isfinite(results["val_ppl"])
    assert results["val_ppl"] == pytest.approx(math.exp(results["val_loss"]), rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
@pytest.mark.parametrize("embedding_dim", [None, 3], ids=["one-hot", "embedding"])
def test_net_runs_in_the_dtype_of_its_weights(dtype, embedding_dim):
    net = LanguageModelNet(V, "gru", hidden_size=4, embedding_dim=embedding_dim).to(dtype)
    logits, state = net(torch.randint(0, V, (2, 7)))
    assert logits.dtype == state.dtype == dtype


def test_learns_and_generates(tmp_path, make_trainer):
    torch.manual_seed(0)
    optimizer = partial(torch.optim.Adam, lr=0.05)
    model = LanguageModel(
        V, hidden_size=16, sample_prefixes=["ab"], num_generate=8, optimizer=optimizer
    )
    data = ToyText("sequential")
    trainer = make_trainer(max_epochs=30, check_val_every_n_epoch=30, gradient_clip_val=1.0)
    trainer.fit(model, data)
    assert model.generate("ab", 8) == "abcd abcd " == model.generate("ab", 8, tokenizer=data)
    model.train()
    model.generate("ab", 2, tokenizer=data)
    assert model.training  # generate runs in eval mode and restores the mode
    assert "| ab | abcd abcd  |" in (tmp_path / "generated_text.md").read_text()
    predictions = trainer.predict(model, data)[0]
    assert predictions == [
        {"prefix": "ab", "text": "abcd abcd "},
        {"prefix": "c", "text": "cd abcd a"},
    ]


def test_a_sample_prefix_without_tokens_is_refused_before_training(make_trainer):
    model = LanguageModel(V, hidden_size=4, sample_prefixes=["ab", ""], num_generate=3)
    trainer = make_trainer(max_epochs=2)
    with pytest.raises(ValueError, match="sample_prefixes: '' holds no token"):
        trainer.fit(model, ToyText("random"))
    assert trainer.global_step == 0


def test_a_sample_prefix_without_a_letter_is_refused_before_training(tmp_path, make_trainer):
    """The time machine reads letters and spaces only: "42!" would be one space, which the
    model would continue as if it were the prefix."""
    text = tmp_path / "text.txt"
    text.write_text("the time machine and the time traveller\n" * 30)
    data = TimeMachineDataModule(data_file=str(text), batch_size=2, num_steps=4)
    model = LanguageModel(
        data.vocab_size, hidden_size=4, sample_prefixes=["the", "42!"], num_generate=3
    )
    trainer = make_trainer(max_epochs=2)
    with pytest.raises(ValueError, match="sample_prefixes: '42!' holds no letter"):
        trainer.fit(model, data)
    assert trainer.global_step == 0


def test_generate_needs_a_tokenizer():
    with pytest.raises(ValueError, match="tokenizer"):
        LanguageModel(V, hidden_size=4).generate("ab", 3)


def _word_tokenizer() -> TimeMachineDataModule:
    tokenizer = TimeMachineDataModule(token="word")
    words = ["<unk>", "time", "traveller", "the", "machine"]
    tokenizer.load_state_dict(
        {"token": "word", "vocab": {"idx_to_token": words, "unk_token": "<unk>"}}
    )
    return tokenizer


def test_generated_words_are_separated_from_the_prefix():
    torch.manual_seed(0)
    text = LanguageModel(5, hidden_size=4).generate("Time traveller", 3, _word_tokenizer())
    assert text.startswith("Time traveller ")
    assert len(text.split()) == 5


@pytest.mark.parametrize("prefix", ["", "   ", "!?"])
def test_a_prefix_without_tokens_is_refused_and_the_mode_kept(prefix):
    model = LanguageModel(5, hidden_size=4).train()
    with pytest.raises(ValueError, match="at least one token"):
        model.generate(prefix, 3, _word_tokenizer())
    assert model.training


@pytest.mark.parametrize("stage", ["fit", "validate"])
def test_a_vocabulary_larger_than_the_model_is_refused(tmp_path, make_trainer, stage):
    text = tmp_path / "text.txt"
    text.write_text("the time machine and the time traveller\n" * 30)
    data = TimeMachineDataModule(data_file=str(text), token="word", batch_size=2, num_steps=4)
    data.prepare_data()
    data.setup("fit")
    assert data.vocab_size > 3
    run = getattr(make_trainer(fast_dev_run=True), stage)
    with pytest.raises(ValueError, match=f"vocab_size=3 is smaller .* {data.vocab_size} tokens"):
        run(LanguageModel(3, hidden_size=4), datamodule=data)


VOCAB = 5  # a vocabulary for the small models below


def test_a_shorter_batch_does_not_continue_the_carried_state():
    """With carry_state, a batch of another size (a short last batch) starts from zero instead
    of feeding the previous batch's (B, H) state to the encoder."""
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=VOCAB, hidden_size=4, carry_state=True)
    X = torch.randint(0, VOCAB, (4, 6))
    model.training_step((X, X), 0)  # carries a state of batch size 4
    short = X[:2]
    loss = model.training_step((short, short), 1)
    model._state["train"] = None
    assert torch.allclose(loss, model.training_step((short, short), 1))


def test_every_validation_epoch_starts_from_a_zero_state():
    """With carry_state, the state carried through one validation is not where the next
    validation starts: the same batch gives the same loss in both."""
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=VOCAB, hidden_size=4, carry_state=True).eval()
    X = torch.randint(0, VOCAB, (4, 6))
    losses = []
    for _ in range(2):
        model.on_validation_epoch_start()
        losses.append(model.validation_step((X, X), 0))
    torch.testing.assert_close(losses[0], losses[1])


class WordTokenizer:
    """Words of ``' a b c d'``, joined by spaces."""

    separator = " "
    words = ["<unk>", "a", "b", "c", "d"]

    def encode(self, text: str) -> list[int]:
        return [self.words.index(w) if w in self.words else 0 for w in text.split()]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.words[i] for i in ids)


def test_generate_puts_one_separator_after_a_prefix_that_ends_with_it():
    torch.manual_seed(0)
    model = LanguageModel(vocab_size=VOCAB, hidden_size=4)
    text = model.generate("a b ", 3, WordTokenizer())
    assert text.startswith("a b ") and "  " not in text
    assert len(text.split(" ")) == 5  # two prefix words, three generated ones


def test_testing_reports_what_validating_does_on_the_same_batches(make_trainer):
    """The test stage (a data module with a test split, or test loaders from Python) carries
    the state as validation does and starts every run from a zero state: two runs, the same
    numbers."""
    torch.manual_seed(0)
    model = LanguageModel(V, hidden_size=4, carry_state=True, num_generate=3)
    batches = DataLoader(ToyText("sequential").batches, batch_size=None)
    trainer = make_trainer()
    (validated,) = trainer.validate(model, batches, verbose=False)
    for _ in range(2):
        (tested,) = trainer.test(model, batches, verbose=False)
        assert tested == {"test_loss": validated["val_loss"], "test_ppl": validated["val_ppl"]}


def test_a_model_with_spare_output_units_generates_the_tokenizers_tokens_only():
    """The vocabulary check lets a model have more units than the data has tokens; the ids
    past the tokenizer's have no text, so generation predicts among the tokenizer's."""

    class SizedToyText(ToyText):
        vocab_size = V

    model = LanguageModel(V + 3, hidden_size=4)
    with torch.no_grad():
        model.net.head.bias[V:] = 100.0  # the spare units would win every argmax
    text = model.generate("ab", 4, SizedToyText())
    assert len(text) == 6 and set(text) <= set(" abcd")


def test_a_tokenizer_larger_than_the_model_is_refused():
    """Its ids would fail in one_hot deep inside torch, or, below the model's size, give text
    of another vocabulary."""

    class LargerText(ToyText):
        vocab_size = V + 1

    with pytest.raises(ValueError, match=r"vocabulary of 6 tokens is larger than .*vocab_size=5"):
        LanguageModel(V, hidden_size=4).generate("ab", 3, LargerText())

    class UnsizedLargerText(ToyText):
        def encode(self, text):
            return [7]

    with pytest.raises(ValueError, match=r"gives 'ab' the id 7, past the model's vocab_size=5"):
        LanguageModel(V, hidden_size=4).generate("ab", 3, UnsizedLargerText())


def test_generating_no_tokens_gives_the_prefix_back():
    assert LanguageModel(V, hidden_size=4).generate("ab c", 0, ToyText()) == "ab c"


@pytest.mark.parametrize("num_tokens", [-1, 2.0, "5"])
def test_a_count_of_tokens_that_is_negative_or_not_an_integer_is_refused(num_tokens):
    """Guards against: ``generate(prefix, -3)`` (and ``num_generate=-1``) giving the prefix
    back silently, where ``ForecastNet.rollout`` refuses negative steps."""
    error = ValueError if isinstance(num_tokens, int) else TypeError
    with pytest.raises(error, match="num_generate must be"):
        LanguageModel(vocab_size=V, hidden_size=4, num_generate=num_tokens)
    model = LanguageModel(vocab_size=V, hidden_size=4)
    with pytest.raises(error, match="num_tokens must be"):
        model.generate("ab", num_tokens, tokenizer=ToyText())


def test_one_sample_prefix_string_is_refused():
    """Guards against: ``sample_prefixes="time"`` generating after each of ``t``, ``i``, ``m``
    and ``e``."""
    with pytest.raises(TypeError, match=r"sample_prefixes must be a list of str, got str"):
        LanguageModel(vocab_size=V, sample_prefixes="time")


def test_an_empty_vocabulary_is_refused_by_name():
    """Guards against: torch's "input_size must be greater than zero" (one-hot inputs)."""
    with pytest.raises(ValueError, match="vocab_size must be >= 1, got 0"):
        LanguageModel(vocab_size=0)


@pytest.mark.parametrize("check_val_every_n_epoch", [1, 2])
def test_a_plateau_scheduler_is_refused_when_the_data_holds_no_validation(
    tmp_path, make_trainer, check_val_every_n_epoch
):
    """Guards against: ``val_fraction=0`` with a ``ReduceLROnPlateau`` ending the fit after the
    first epoch that validates, with Lightning's "ReduceLROnPlateau conditioned on metric
    val_loss which is not available" (the docs promise a refusal when the fit starts)."""
    path = tmp_path / "text.txt"
    path.write_text("the time traveller for so it will be convenient to speak of him\n" * 5)
    data = TimeMachineDataModule(
        str(path), cache_dir=str(tmp_path / "cache"), batch_size=2, num_steps=5, val_fraction=0
    )
    plateau = partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0)
    model = LanguageModel(vocab_size=data.vocab_size, hidden_size=4, lr_scheduler=plateau)
    trainer = make_trainer(max_epochs=3, check_val_every_n_epoch=check_val_every_n_epoch)
    with pytest.raises(ValueError, match="ReduceLROnPlateau watches val_loss, and the validat"):
        trainer.fit(model, data)
    assert trainer.global_step == 0
