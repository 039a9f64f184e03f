"""The oracle itself: ``reference_gru`` against a scalar, loop-by-loop GRU written from the
equations (independent of torch for the ``reset_after=False`` cell torch does not have), and
the semantics of ``lengths`` and dropout; then ``lightning_gru.functional.gru`` against it.
"""

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from lightning_gru.functional import gru
from lightning_gru.functional.reference import reference_gru

RESET_AFTER = [pytest.param(True, id="torch"), pytest.param(False, id="cho")]


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _scalar_gru_direction(xs, h, w_ih, w_hh, b_ih, b_hh, reset_after):
    """One direction over a list of input vectors, with Python floats only."""
    H = len(h)

    def affine(w, b, v, row):
        return sum(w[row][k] * v[k] for k in range(len(v))) + (b[row] if b else 0.0)

    outputs = []
    for x in xs:
        r = [_sigmoid(affine(w_ih, b_ih, x, j) + affine(w_hh, b_hh, h, j)) for j in range(H)]
        z = [
            _sigmoid(affine(w_ih, b_ih, x, H + j) + affine(w_hh, b_hh, h, H + j)) for j in range(H)
        ]
        if reset_after:
            hn = [affine(w_hh, b_hh, h, 2 * H + j) for j in range(H)]
            n = [math.tanh(affine(w_ih, b_ih, x, 2 * H + j) + r[j] * hn[j]) for j in range(H)]
        else:
            rh = [r[k] * h[k] for k in range(H)]
            n = [
                math.tanh(affine(w_ih, b_ih, x, 2 * H + j) + affine(w_hh, b_hh, rh, 2 * H + j))
                for j in range(H)
            ]
        h = [(1 - z[j]) * n[j] + z[j] * h[j] for j in range(H)]
        outputs.append(h)
    return outputs, h


def _scalar_gru(x, h0, weights, num_layers, bidirectional, reset_after, lengths):
    """``(T, B, I)`` -> output ``(T, B, D*H)``, h_n, computed sequence by sequence."""
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    H = h0.shape[-1]
    out = torch.zeros(T, B, D * H, dtype=torch.float64)
    h_n = torch.zeros_like(h0)
    for b in range(B):
        n_b = lengths[b]
        layer_in = [x[t, b].tolist() for t in range(n_b)]
        for layer in range(num_layers):
            directions = []
            for d in range(D):
                k = layer * D + d
                w = [None if t is None else t.tolist() for t in weights[k]]
                seq = layer_in if d == 0 else layer_in[::-1]
                outs, h_last = _scalar_gru_direction(seq, h0[k, b].tolist(), *w, reset_after)
                directions.append(outs if d == 0 else outs[::-1])
                h_n[k, b] = torch.tensor(h_last, dtype=torch.float64)
            layer_in = [sum((dir_out[t] for dir_out in directions), []) for t in range(n_b)]
        out[:n_b, b] = torch.tensor(layer_in, dtype=torch.float64)
    return out, h_n


def _weights(I, H, num_layers, D, bias, gen):  # noqa: E741
    weights = []
    for layer in range(num_layers):
        in_size = I if layer == 0 else D * H
        for _ in range(D):
            w_ih = torch.randn(3 * H, in_size, generator=gen, dtype=torch.float64)
            w_hh = torch.randn(3 * H, H, generator=gen, dtype=torch.float64)
            b_ih = torch.randn(3 * H, generator=gen, dtype=torch.float64) if bias else None
            b_hh = torch.randn(3 * H, generator=gen, dtype=torch.float64) if bias else None
            weights.append((w_ih * 0.7, w_hh * 0.7, b_ih, b_hh))
    return weights


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize(
    ("num_layers", "bidirectional", "bias", "lengths"),
    [
        pytest.param(1, False, True, None, id="L1"),
        pytest.param(2, True, True, None, id="L2-bi"),
        pytest.param(2, False, False, None, id="L2-nobias"),
        pytest.param(1, True, True, [3, 5, 1], id="lengths-bi"),
        pytest.param(2, True, False, [5, 2, 4], id="lengths-L2-bi-nobias"),
    ],
)
def test_reference_matches_scalar_equations(num_layers, bidirectional, bias, lengths, reset_after):
    gen = torch.Generator().manual_seed(0)
    T, B, I, H, D = 5, 3, 2, 3, 2 if bidirectional else 1  # noqa: E741
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    h0 = torch.randn(num_layers * D, B, H, generator=gen, dtype=torch.float64)
    weights = _weights(I, H, num_layers, D, bias, gen)
    out, h_n = reference_gru(
        x, h0, weights, num_layers=num_layers, bidirectional=bidirectional,
        reset_after=reset_after, lengths=None if lengths is None else torch.tensor(lengths),
    )  # fmt: skip
    expected_out, expected_h_n = _scalar_gru(
        x, h0, weights, num_layers, bidirectional, reset_after, lengths or [T] * B
    )
    torch.testing.assert_close(out, expected_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h_n, expected_h_n, rtol=1e-12, atol=1e-12)


def test_the_two_cells_differ_only_in_the_candidate() -> None:
    """With ``W_hn = 0`` the reset gate has no effect, and the two cells agree."""
    gen = torch.Generator().manual_seed(1)
    weights = _weights(2, 3, 1, 1, True, gen)
    w_ih, w_hh, b_ih, b_hh = weights[0]
    w_hh = w_hh.clone()
    w_hh[6:] = 0
    b_hh = b_hh.clone()
    b_hh[6:] = 0
    x, h0 = torch.randn(4, 2, 2, generator=gen), torch.randn(1, 2, 3, generator=gen)
    x, h0 = x.double(), h0.double()
    results = [
        reference_gru(x, h0, [(w_ih, w_hh, b_ih, b_hh)], num_layers=1, bidirectional=False,
                      reset_after=reset_after)
        for reset_after in (True, False)
    ]  # fmt: skip
    torch.testing.assert_close(results[0], results[1], rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_lengths_freeze_state_and_zero_outputs(reset_after: bool) -> None:
    gen = torch.Generator().manual_seed(2)
    T, B, I, H, L = 6, 3, 2, 4, 2  # noqa: E741
    weights = _weights(I, H, L, 2, True, gen)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    h0 = torch.randn(2 * L, B, H, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    kwargs = dict(num_layers=L, bidirectional=True, reset_after=reset_after)
    out, h_n = reference_gru(x, h0, weights, lengths=lengths, **kwargs)
    for b, n in enumerate(lengths.tolist()):
        alone_out, alone_h = reference_gru(x[:n, b : b + 1], h0[:, b : b + 1], weights, **kwargs)
        torch.testing.assert_close(out[:n, b : b + 1], alone_out, rtol=1e-14, atol=1e-14)
        torch.testing.assert_close(h_n[:, b : b + 1], alone_h, rtol=1e-14, atol=1e-14)
        assert not out[n:, b].any()


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_dropout_between_layers_only_in_training(reset_after: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    T, B, I, H = 4, 2, 3, 5  # noqa: E741
    weights = _weights(I, H, 2, 1, True, gen)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    h0 = torch.randn(2, B, H, generator=gen, dtype=torch.float64)
    kwargs = dict(num_layers=2, bidirectional=False, reset_after=reset_after)
    plain = reference_gru(x, h0, weights, **kwargs)
    in_eval = reference_gru(x, h0, weights, dropout=1.0, training=False, **kwargs)
    torch.testing.assert_close(in_eval, plain)
    # p = 1 zeroes the input of layer 1; layer 0 (and its h_n) are untouched
    out, h_n = reference_gru(x, h0, weights, dropout=1.0, training=True, **kwargs)
    layer1_on_zeros = reference_gru(
        torch.zeros(T, B, H, dtype=torch.float64), h0[1:], weights[1:], num_layers=1,
        bidirectional=False, reset_after=reset_after,
    )  # fmt: skip
    torch.testing.assert_close(out, layer1_on_zeros[0])
    torch.testing.assert_close(h_n[1:], layer1_on_zeros[1])
    torch.testing.assert_close(h_n[:1], plain[1][:1])
    # no dropout after the last layer
    single = reference_gru(x, h0[:1], weights[:1], num_layers=1, bidirectional=False,
                           reset_after=reset_after, dropout=1.0, training=True)  # fmt: skip
    torch.testing.assert_close(
        single, reference_gru(x, h0[:1], weights[:1], num_layers=1, bidirectional=False,
                              reset_after=reset_after)
    )  # fmt: skip


def test_reference_rejects_bad_arguments() -> None:
    weights = _weights(2, 3, 1, 1, True, torch.Generator().manual_seed(0))
    x, h0 = torch.randn(4, 1, 2, dtype=torch.float64), torch.zeros(1, 1, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="weight"):
        reference_gru(x, h0, weights, num_layers=2, bidirectional=False)
    with pytest.raises(RuntimeError, match="sequence length"):
        reference_gru(x[:0], h0, weights, num_layers=1, bidirectional=False)


@pytest.mark.parametrize(
    ("x_shape", "h0_shape", "lengths", "message"),
    [
        ((4, 2), (1, 2, 3), None, "2-D"),
        ((4, 2, 5), (1, 2, 3), None, "input_size. Expected 2, got 5"),
        ((4, 2, 2), (1, 1, 3), None, r"hidden size \(1, 2, 3\)"),  # would broadcast
        ((4, 2, 2), (2, 2, 3), None, r"hidden size \(1, 2, 3\), got \[2, 2, 3\]"),
        ((4, 2, 2), (1, 2, 4), None, "hidden size"),
        ((4, 2, 2), (1, 2, 3), [4, 3, 1], "lengths"),
    ],
    ids=["2-D input", "input size", "h0 of one sequence", "h0 of 2 layers", "h0 width", "lengths"],
)
def test_reference_names_a_bad_shape(x_shape, h0_shape, lengths, message) -> None:
    """Torch's kind of error for shapes that would fail in a product or broadcast silently."""
    weights = _weights(2, 3, 1, 1, True, torch.Generator().manual_seed(0))[:1]
    x, h0 = torch.randn(*x_shape, dtype=torch.float64), torch.zeros(*h0_shape, dtype=torch.float64)
    lengths = None if lengths is None else torch.tensor(lengths)
    with pytest.raises(RuntimeError, match=message):
        reference_gru(x, h0, weights, num_layers=1, bidirectional=False, lengths=lengths)


def test_functional_cho_cell_on_torch_names_a_bad_hx() -> None:
    """``gru(..., reset_after=False, backend="torch")`` (the CUDA path of Cho's cell) runs the
    reference: an ``hx`` of one sequence for two is an error, not a broadcast."""
    reference = torch.nn.GRU(2, 3)
    x = torch.randn(4, 2, 2)
    with pytest.raises(RuntimeError, match="hidden size"):
        gru(x, torch.zeros(1, 1, 3), reference._flat_weights, reset_after=False, backend="torch")


# --- lightning_gru.functional.gru against the reference ----------------------------------------


def _flat(weights) -> list[torch.Tensor]:
    return [w for group in weights for w in group if w is not None]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("backend", ["cython", "torch", "auto"])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_functional_gru_matches_reference(packed, reset_after, backend, dtype) -> None:
    gen = torch.Generator().manual_seed(4)
    T, B, I, H, L = 5, 3, 2, 4, 2  # noqa: E741
    weights = [
        tuple(None if w is None else w.to(dtype).requires_grad_() for w in group)
        for group in _weights(I, H, L, 2, True, gen)
    ]
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64).to(dtype).requires_grad_()
    h0 = torch.randn(2 * L, B, H, generator=gen, dtype=torch.float64).to(dtype).requires_grad_()
    lengths = torch.tensor([5, 3, 2]) if packed else None  # sorted: batch_sizes order = batch
    kwargs = dict(num_layers=L, bidirectional=True)
    expected_out, expected_h = reference_gru(
        x, h0, weights, reset_after=reset_after, lengths=lengths, **kwargs
    )
    if packed:
        data = pack_padded_sequence(x, lengths)
        out, h_n = gru(data.data, h0, _flat(weights), batch_sizes=data.batch_sizes,
                       reset_after=reset_after, backend=backend, **kwargs)  # fmt: skip
        expected_out = pack_padded_sequence(expected_out, lengths).data
    else:
        out, h_n = gru(x, h0, _flat(weights), reset_after=reset_after, backend=backend, **kwargs)
    rtol, atol = (1e-10, 1e-12) if dtype == torch.float64 else (1e-5, 1e-5)
    torch.testing.assert_close(out, expected_out, rtol=rtol, atol=atol)
    torch.testing.assert_close(h_n, expected_h, rtol=rtol, atol=atol)
    leaves = [x, h0, *_flat(weights)]
    g = torch.autograd.grad((out.sum() + h_n.square().sum()), leaves)
    g_ref = torch.autograd.grad((expected_out.sum() + expected_h.square().sum()), leaves)
    for a, e in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, e, rtol=rtol, atol=atol * max(1.0, e.abs().max().item()))


def test_functional_gru_rejects_bad_arguments() -> None:
    weights = _flat(_weights(2, 3, 1, 1, True, torch.Generator().manual_seed(0)))
    x, h0 = torch.randn(4, 1, 2, dtype=torch.float64), torch.zeros(1, 1, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="weights"):
        gru(x, h0, weights[:3])
    with pytest.raises(ValueError, match="backend"):
        gru(x, h0, weights, backend="nope")
