"""Parity of ``lightning_gru.nn.GRU`` (Cython backend) with its oracle on CPU.

Outputs, ``h_n`` and the gradients of the input, ``h0`` and every weight and bias, in float64
(rtol 1e-10) and float32 (rtol 1e-5, atol 1e-5 times the largest magnitude), over a grid of
layer counts, directions, bias, input layouts (dense, batch_first, unbatched, packed sorted and
unsorted) and with/without ``h0``. ``reset_after=True`` is compared with ``torch.nn.GRU``,
``reset_after=False`` with ``ReferenceGRU``.
"""

import itertools

import pytest
import torch
from _gru_helpers import (
    DTYPES,
    LAYOUTS,
    RESET_AFTER,
    Case,
    assert_close,
    check_parity,
    make_inputs,
    make_pair,
    run,
)

from lightning_gru.functional import gru
from lightning_gru.nn import GRU


def _grid(reset_after: bool, layers=(1, 2, 3)) -> list:
    params = []
    for num_layers, bidirectional, bias, layout, with_h0 in itertools.product(
        layers, (False, True), (True, False), LAYOUTS, (True, False)
    ):
        case = Case(
            num_layers=num_layers,
            bidirectional=bidirectional,
            bias=bias,
            layout=layout,
            with_h0=with_h0,
            reset_after=reset_after,
        )
        params.append(pytest.param(case, id=str(case)))
    return params


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", _grid(reset_after=True))
def test_parity_with_torch(case: Case, dtype: torch.dtype) -> None:
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, make_inputs(case, dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", _grid(reset_after=False, layers=(1, 2)))
def test_reset_before_parity_with_reference(case: Case, dtype: torch.dtype) -> None:
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, make_inputs(case, dtype), dtype)


EDGE_CASES = [
    pytest.param(Case(B=1), id="B1"),
    pytest.param(Case(T=1), id="T1"),
    pytest.param(Case(T=1, B=1, I=1, H=1), id="T1-B1-I1-H1"),
    pytest.param(Case(T=1, B=1, num_layers=2, bidirectional=True), id="T1-B1-L2-bi"),
    pytest.param(Case(B=1, layout="unbatched", num_layers=2, bidirectional=True), id="unbatched"),
    pytest.param(Case(B=0), id="B0-empty-batch"),
    pytest.param(Case(B=0, num_layers=2, bidirectional=True, with_h0=False), id="B0-L2-bi"),
    pytest.param(Case(layout="packed", lengths=(1, 1, 1)), id="packed-all-length1"),
    pytest.param(Case(layout="packed", lengths=(4, 4, 4)), id="packed-all-full"),
    pytest.param(Case(layout="packed", lengths=(2,)), id="packed-B1"),
    pytest.param(
        Case(layout="packed", lengths=(1, 7, 3, 7, 2, 1), num_layers=2, bidirectional=True),
        id="packed-ties-L2-bi",
    ),
    pytest.param(
        Case(layout="packed_sorted", lengths=(9, 5, 5, 1), bidirectional=True),
        id="packed-sorted-bi",
    ),
    pytest.param(Case(T=40, B=3, I=4, H=5, num_layers=2), id="long-T40"),
    pytest.param(Case(T=400, B=1, I=3, H=8, layout="unbatched"), id="long-T400-unbatched"),
    pytest.param(Case(T=1, B=2000, I=3, H=8), id="wide-B2000-T1"),
    # sizes around SIMD widths and GEMM blocking
    pytest.param(Case(T=3, B=9, I=16, H=16, bidirectional=True), id="H16"),
    pytest.param(Case(T=3, B=5, I=17, H=17), id="H17"),
    pytest.param(Case(T=3, B=7, I=33, H=31, num_layers=2), id="H31-I33"),
    pytest.param(Case(T=6, B=16, I=32, H=64, num_layers=2, bidirectional=True), id="H64"),
    pytest.param(Case(T=4, B=33, I=8, H=129), id="H129-B33"),
    pytest.param(Case(T=4, B=2, I=300, H=6), id="I300"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_shapes(case: Case, reset_after: bool, dtype: torch.dtype) -> None:
    case = case.with_(reset_after=reset_after)
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, make_inputs(case, dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Case(T=35, B=32, I=28, H=256), id="time-machine"),
        pytest.param(
            Case(T=32, B=16, I=100, H=128, num_layers=2, bidirectional=True, layout="packed",
                 lengths=tuple(32 - 2 * b for b in range(16))[::-1]),
            id="imdb-like-packed",
        ),
        pytest.param(Case(T=20, B=38, I=1, H=16, layout="batch_first"), id="sine"),
    ],
)  # fmt: skip
def test_realistic_sizes(case: Case, reset_after: bool, dtype: torch.dtype) -> None:
    case = case.with_(reset_after=reset_after)
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, make_inputs(case, dtype), dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_imdb_size(dtype: torch.dtype) -> None:
    case = Case(T=256, B=64, I=100, H=256, num_layers=2, bidirectional=True, layout="batch_first")
    oracle, ours = make_pair(case, dtype)
    check_parity(oracle, ours, case, make_inputs(case, dtype), dtype)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_eval_mode_parity(reset_after: bool) -> None:
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case)
    oracle.eval(), ours.eval()
    check_parity(oracle, ours, case, make_inputs(case), torch.float64)


@pytest.mark.parametrize(
    "trainable",
    [
        pytest.param(dict(x=True, h0=False, params=False), id="input-only"),
        pytest.param(dict(x=False, h0=True, params=False), id="h0-only"),
        pytest.param(dict(x=False, h0=False, params=True), id="params-only"),
        pytest.param(dict(x=False, h0=False, params=False), id="nothing"),
    ],
)
@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_partial_requires_grad(trainable: dict, reset_after: bool) -> None:
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case)
    for module in (oracle, ours):
        module.requires_grad_(trainable["params"])
    inputs = make_inputs(case)
    inputs.x.requires_grad_(trainable["x"])
    inputs.h0.requires_grad_(trainable["h0"])
    result = check_parity(oracle, ours, case, inputs, torch.float64)
    assert any(key.startswith("grad") for key in result) == any(trainable.values())


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_backward_twice_with_retain_graph(reset_after: bool) -> None:
    case = Case(num_layers=2, reset_after=reset_after)
    oracle, ours = make_pair(case)
    for module in (oracle, ours):
        inputs = make_inputs(case)
        out, h_n = run(module, case, inputs)
        loss = out.square().sum() + h_n.sum()
        loss.backward(retain_graph=True)
        loss.backward()
    for (name, p_oracle), p_ours in zip(oracle.named_parameters(), ours.parameters(), strict=True):
        assert_close(p_ours.grad, p_oracle.grad, torch.float64, name)


def test_repeated_calls_are_independent() -> None:
    case = Case(num_layers=2, bidirectional=True)
    _, ours = make_pair(case)
    first = run(ours, case, make_inputs(case, seed=3))
    run(ours, case, make_inputs(case.with_(T=9, B=2), seed=4))
    again = run(ours, case, make_inputs(case, seed=3))
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)


def test_thread_count_does_not_change_results() -> None:
    case = Case(T=6, B=16, I=32, H=64, num_layers=2, bidirectional=True)
    oracle, ours = make_pair(case, torch.float64)
    inputs = make_inputs(case)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run(ours, case, inputs)
    finally:
        torch.set_num_threads(threads)
    many = run(ours, case, inputs)
    for a, b in zip(one, many, strict=True):
        assert_close(a, b, torch.float64, "1 thread vs default")


def test_cython_backend_does_not_call_torch_gru() -> None:
    """Parity would pass trivially if ``backend="cython"`` fell back to ``aten::gru``."""
    case = Case(num_layers=2, bidirectional=True)
    _, ours = make_pair(case, torch.float32)
    inputs = make_inputs(case, torch.float32)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        out, h_n = run(ours, case, inputs)
        (out.sum() + h_n.sum()).backward()
    names = {event.name for event in prof.events()}
    assert not {name for name in names if name.startswith("aten::gru")}, sorted(names)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_auto_backend_on_cpu_matches_cython(reset_after: bool) -> None:
    case = Case(num_layers=2, bidirectional=True, layout="packed", reset_after=reset_after)
    _, cython = make_pair(case, backend="cython")
    _, auto = make_pair(case, backend="auto")
    inputs = make_inputs(case)
    for a, b in zip(run(auto, case, inputs), run(cython, case, inputs), strict=True):
        assert_close(a, b, torch.float64, "auto vs cython")


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_gru_without_input_features(dtype: torch.dtype) -> None:
    """Weights of zero input features (``torch.nn.GRU`` refuses ``input_size=0``, its functional
    form takes them): the input projection is a product of depth 0, whose result the kernel
    must zero (the buffer it writes to is not), so the gates hold the biases alone."""
    torch.manual_seed(0)
    H, x, h0 = 4, torch.randn(5, 3, 0, dtype=dtype), torch.randn(1, 3, 4, dtype=dtype)
    weights = [torch.randn(*shape, dtype=dtype) for shape in ((3 * H, 0), (3 * H, H), (12,), (12,))]
    for w in weights:
        w.requires_grad_()
    expected = torch._VF.gru(x, h0, weights, True, 1, 0.0, False, False, False)
    expected_grads = torch.autograd.grad(expected[0].sum(), weights[1:])
    for _ in range(3):  # the kernel's buffers in memory that held NaN
        torch.full((5 * 3 * 3 * H,), float("nan"), dtype=dtype).sum()
        actual = gru(x, h0, weights, backend="cython")
        for a, e in zip(actual, expected, strict=True):
            assert_close(a, e, dtype, "output and h_n")
        grads = torch.autograd.grad(actual[0].sum(), weights[1:])
        for a, e in zip(grads, expected_grads, strict=True):
            assert_close(a, e, dtype, "weight gradients")


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_torch_backend_on_cpu(reset_after: bool) -> None:
    """``backend="torch"``: torch's own GRU, or the pure-torch path for ``reset_after=False``."""
    case = Case(num_layers=2, bidirectional=True, layout="packed", reset_after=reset_after)
    oracle, ours = make_pair(case, backend="torch")
    check_parity(oracle, ours, case, make_inputs(case), torch.float64)


def test_torch_backend_without_biases_cho_cell() -> None:
    """``backend="torch"``, ``reset_after=False`` and ``bias=False``: the flat weights, two per
    layer and direction, are grouped for the reference GRU."""
    case = Case(num_layers=2, bidirectional=True, bias=False, layout="packed", reset_after=False)
    oracle, ours = make_pair(case, backend="torch")
    check_parity(oracle, ours, case, make_inputs(case), torch.float64)


@pytest.mark.parametrize("with_h0", [True, False], ids=["h0", "noh0"])
def test_unbatched_input_with_batch_first(with_h0: bool) -> None:
    """An unbatched ``(T, I)`` input to a ``batch_first`` module, as ``torch.nn.GRU`` takes it."""
    case = Case(T=5, layout="batch_first", num_layers=2, bidirectional=True)
    oracle, ours = make_pair(case)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(case.T, case.I, generator=gen, dtype=torch.float64)
    args = (x, torch.randn(2 * case.D, case.H, generator=gen, dtype=torch.float64))
    args = args if with_h0 else args[:1]
    for actual, expected in zip(ours(*args), oracle(*args), strict=True):
        assert actual.shape == expected.shape
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_reset_after_false_differs_from_torch_cell() -> None:
    """The two cells must really differ (guards against a flag that is ignored)."""
    case = Case(num_layers=1, reset_after=False)
    _, cho = make_pair(case)
    _, torch_cell = make_pair(case.with_(reset_after=True))
    inputs = make_inputs(case)
    out_cho, _ = run(cho, case, inputs)
    out_torch, _ = run(torch_cell, case, inputs)
    assert (out_cho - out_torch).abs().max() > 1e-3


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize(("T", "B"), [(20_000, 1), (2, 500_000)], ids=["long", "wide"])
def test_float32_bias_gradients_of_many_rows(reset_after: bool, T: int, B: int) -> None:
    """The bias gradients are sums over all N = T x B rows: summed in float32 row after row,
    20,000 rows lost ~4e-6 (torch: 2e-7), a step of a million rows 1.8e-3 (torch: 8e-8); the
    kernel sums 256 rows of a step at a time in float32, then those sums in double."""
    torch.manual_seed(0)
    I, H = 4, 16  # noqa: E741
    ours = GRU(I, H, reset_after=reset_after, backend="cython")
    exact = GRU(I, H, reset_after=reset_after, backend="cython").double()
    exact.load_state_dict(ours.state_dict())
    x = torch.randn(T, B, I, dtype=torch.float64)
    upstream = torch.randn(T, B, H, dtype=torch.float64)
    for module, dtype in ((ours, torch.float32), (exact, torch.float64)):
        (module(x.to(dtype))[0] * upstream.to(dtype)).sum().backward()
    for name in ("bias_ih_l0", "bias_hh_l0"):
        expected = getattr(exact, name).grad
        error = (getattr(ours, name).grad.double() - expected).abs().max() / expected.abs().max()
        assert error < 1e-6, (name, float(error))
