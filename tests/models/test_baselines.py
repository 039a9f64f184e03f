"""The encoder factory and the two baselines of ``lightning_gru.nn.baselines``."""

import warnings

import pytest
import torch
from torch import nn

from lightning_gru.nn import GRU
from lightning_gru.nn.baselines import MLP, BagOfWords, final_state, make_encoder


@pytest.mark.parametrize(
    "kind, cls",
    [
        pytest.param("gru", GRU, id="gru"),
        pytest.param("lstm", nn.LSTM, id="lstm"),
        pytest.param("rnn", nn.RNN, id="rnn"),
    ],
)
def test_make_encoder_builds_batch_first_encoders(kind, cls):
    encoder = make_encoder(kind, 3, 5, num_layers=2, dropout=0.1, bidirectional=True)
    assert type(encoder) is cls
    assert encoder.batch_first and encoder.bidirectional and encoder.num_layers == 2
    out, _ = encoder(torch.randn(4, 7, 3))  # (B, T, I)
    assert out.shape == (4, 7, 10)  # (B, T, 2 H)


@pytest.mark.parametrize("kind", ["gru", "lstm", "rnn"])
def test_make_encoder_builds_time_major_encoders_on_request(kind):
    encoder = make_encoder(kind, 3, 5, batch_first=False)
    assert not encoder.batch_first
    out, _ = encoder(torch.randn(7, 4, 3))  # (T, B, I)
    assert out.shape == (7, 4, 5)


def test_make_encoder_passes_the_gru_options():
    encoder = make_encoder("gru", 3, 4, reset_after=False, backend="torch")
    assert encoder.reset_after is False and encoder.backend == "torch"


def test_make_encoder_drops_dropout_for_one_layer():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about dropout with a single layer
        assert make_encoder("rnn", 3, 4, dropout=0.5).dropout == 0.0


def test_make_encoder_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="unknown encoder"):
        make_encoder("transformer", 3, 4)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_final_state_takes_the_last_layer(bidirectional):
    L, D, B, H = 3, 2 if bidirectional else 1, 2, 4
    h_n = torch.arange(L * D * B * H, dtype=torch.float).reshape(L * D, B, H)
    expected = torch.cat(list(h_n[-D:]), dim=-1)
    assert torch.equal(final_state(h_n, bidirectional), expected)
    assert torch.equal(final_state((h_n, -h_n), bidirectional), expected)  # LSTM (h_n, c_n)
    assert expected.shape == (B, D * H)


def test_bag_of_words_ignores_padding():
    x = torch.randn(3, 6, 5)
    lengths = torch.tensor([6, 2, 4])
    expected = torch.stack([x[i, :n].mean(dim=0) for i, n in enumerate(lengths)])
    torch.testing.assert_close(BagOfWords()(x, lengths), expected)
    x[1, 2:] = 1e6  # padding never counts
    torch.testing.assert_close(BagOfWords()(x, lengths)[1], expected[1])


def test_mlp_layers():
    mlp = MLP(1, (32, 16), 1)
    linears = [m for m in mlp.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(1, 32), (32, 16), (16, 1)]
    assert sum(isinstance(m, nn.ReLU) for m in mlp.layers) == 2
    assert mlp(torch.randn(2, 20, 1)).shape == (2, 20, 1)


def test_mlp_dropout_follows_each_hidden_layer():
    mlp = MLP(1, (32, 16), 1, dropout=0.25)
    kinds = [type(m) for m in mlp.layers]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout] * 2 + [nn.Linear]
    assert all(m.p == 0.25 for m in mlp.layers if isinstance(m, nn.Dropout))
    assert not any(isinstance(m, nn.Dropout) for m in MLP(1, (32, 16), 1).layers)


@pytest.mark.parametrize("dropout", [-0.1, 1.5, float("nan")])
def test_a_dropout_outside_zero_to_one_is_refused_even_where_unused(dropout):
    """One layer and no hidden layer use no dropout, but a typo there is still a typo."""
    for build in (
        lambda: make_encoder("gru", 3, 4, dropout=dropout),
        lambda: MLP(1, (), 1, dropout),
    ):
        with pytest.raises(ValueError, match=f"between 0 and 1, but got {dropout}"):
            build()


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        ([2, 7], "lengths must be 0 to 6 .* got 2 to 7"),
        ([-1, 3], "got -1 to 3"),
        ([2], "expected 2"),
    ],
)
def test_bag_of_words_refuses_lengths_that_do_not_fit(lengths, message):
    with pytest.raises(ValueError, match=message):
        BagOfWords()(torch.randn(2, 6, 5), torch.tensor(lengths))
