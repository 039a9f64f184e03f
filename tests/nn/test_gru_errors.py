"""Bad input raises what ``torch.nn.GRU`` raises; NaN, inf and huge values behave like torch.

Every bad-input case runs through ``torch.nn.GRU`` first: ours must raise the same exception
type, with a message that names the problem. Malformed ``PackedSequence`` objects run in a
subprocess, so that a crash of the kernel fails one test instead of killing the session.
"""

import hashlib
import importlib.machinery
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _gru_helpers import RESET_AFTER, Case, assert_close, make_inputs, make_pair, run
from torch.nn.utils.rnn import PackedSequence

import lightning_gru
from lightning_gru.functional import gru
from lightning_gru.nn import GRU

L, D, H, I = 2, 2, 4, 3  # noqa: E741 -- the modules of the bad-input cases: GRU(3, 4, 2, bi)


def _h(*shape, dtype=torch.float32, device="cpu"):
    return torch.randn(*shape, dtype=dtype, device=device)


# (input, h0 or None, regex the message of ours must match)
BAD_INPUTS = [
    pytest.param(_h(I), None, r"2D or 3D", id="ndim-1"),
    pytest.param(_h(2, 2, 2, I), None, r"2D or 3D", id="ndim-4"),
    pytest.param(_h(5, 2, I + 1), None, r"input_size|input.size", id="wrong-input-size"),
    pytest.param(_h(5, I + 1), None, r"input_size|input.size", id="unbatched-wrong-input-size"),
    pytest.param(_h(5, 2, I), _h(L * D, 3, H), r"[Hh]idden size", id="h0-wrong-batch"),
    pytest.param(_h(5, 2, I), _h(L, 2, H), r"[Hh]idden size", id="h0-wrong-layers"),
    pytest.param(_h(5, 2, I), _h(L * D, 2, H + 1), r"[Hh]idden size", id="h0-wrong-hidden"),
    pytest.param(_h(5, 2, I), _h(L * D, H), r"3-D", id="h0-2d-for-batched"),
    pytest.param(_h(5, I), _h(L * D, 1, H), r"2-D", id="h0-3d-for-unbatched"),
    pytest.param(_h(5, I), _h(L * D, H + 1), r"[Hh]idden size", id="unbatched-h0-wrong"),
    pytest.param(_h(5, 2, I, dtype=torch.float64), None, r"dtype", id="float64-input"),
    pytest.param(torch.ones(5, 2, I, dtype=torch.int64), None, r"dtype", id="int64-input"),
    pytest.param(torch.ones(5, 2, I, dtype=torch.int32), None, r"dtype", id="int32-input"),
    pytest.param(torch.ones(5, 2, I, dtype=torch.bool), None, r"dtype", id="bool-input"),
    pytest.param(_h(5, 2, I, dtype=torch.complex64), None, r"dtype", id="complex-input"),
    pytest.param(_h(5, 2, I), _h(L * D, 2, H, dtype=torch.float64), r"dtype|Double", id="h0-f64"),
    pytest.param(_h(5, 2, I), _h(L * D, 2, H).long(), r"dtype|Long", id="h0-int"),
    pytest.param(_h(0, 2, I), None, r"sequence length", id="empty-sequence"),
    pytest.param(_h(0, I), None, r"sequence length", id="empty-unbatched-sequence"),
    pytest.param(_h(0, 2, I), _h(L * D, 2, H), r"sequence length", id="empty-sequence-with-h0"),
    pytest.param(_h(5, 2, I, device="meta"), None, r"device", id="input-on-meta-device"),
    pytest.param([[1.0, 2.0, 3.0]], None, None, id="list-input"),
]  # fmt: skip


def _raised_by_torch(module_kwargs: dict, args: tuple) -> BaseException:
    torch.manual_seed(0)
    try:
        torch.nn.GRU(**module_kwargs)(*args)
    except Exception as exc:  # noqa: BLE001 -- the type is what we compare
        return exc
    raise AssertionError("torch.nn.GRU accepted this input; the case is wrong")


@pytest.mark.parametrize("backend", ["auto", "cython"])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize(("x", "h0", "match"), BAD_INPUTS)
def test_bad_input_raises_like_torch(x, h0, match, batch_first, reset_after, backend) -> None:
    module_kwargs = dict(
        input_size=I, hidden_size=H, num_layers=L, bidirectional=True, batch_first=batch_first
    )
    if batch_first and isinstance(x, torch.Tensor) and x.dim() == 3:
        x = x.transpose(0, 1)  # the cases are written time-major
    args = (x,) if h0 is None else (x, h0)
    expected = _raised_by_torch(module_kwargs, args)
    ours = GRU(**module_kwargs, reset_after=reset_after, backend=backend)
    with pytest.raises(type(expected), match=match):
        ours(*args)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_bad_packed_input_raises_like_torch(reset_after: bool) -> None:
    """Packed data with the wrong feature size, and ``h0`` with the wrong batch size."""
    packed = torch.nn.utils.rnn.pack_sequence([_h(4, I + 1), _h(2, I + 1)])
    module_kwargs = dict(input_size=I, hidden_size=H, num_layers=L, bidirectional=True)
    ours = GRU(**module_kwargs, reset_after=reset_after, backend="cython")
    with pytest.raises(type(_raised_by_torch(module_kwargs, (packed,))), match="input"):
        ours(packed)
    packed = torch.nn.utils.rnn.pack_sequence([_h(4, I), _h(2, I)])
    h0 = _h(L * D, 3, H)
    with pytest.raises(type(_raised_by_torch(module_kwargs, (packed, h0))), match="[Hh]idden"):
        ours(packed, h0)


def test_unknown_backend_is_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="backend"):
        GRU(3, 4, backend="cudnn")
    with pytest.raises(ValueError, match="backend"):
        GRU(3, 4, backend="")


@pytest.mark.parametrize("value", ["False", None, 2])
def test_reset_after_must_be_a_bool(value) -> None:
    """A string "False" from a config file would otherwise read as True."""
    with pytest.raises(TypeError, match=f"reset_after should be a bool, got {value!r}"):
        GRU(3, 4, reset_after=value)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cython_backend_rejects_unsupported_dtype(dtype: torch.dtype) -> None:
    ours = GRU(3, 4, dtype=dtype, backend="cython")
    with pytest.raises(ValueError, match="cython"):
        ours(torch.randn(5, 2, 3, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_auto_backend_falls_back_to_torch_for_half_precision(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    expected_module = torch.nn.GRU(3, 4, num_layers=2, dtype=dtype)
    ours = GRU(3, 4, num_layers=2, dtype=dtype)
    ours.load_state_dict(expected_module.state_dict())
    x = torch.randn(5, 2, 3, dtype=dtype)
    for a, e in zip(ours(x), expected_module(x), strict=True):
        torch.testing.assert_close(a, e)


# --- malformed PackedSequence objects: must raise, never crash the interpreter ------------------

_MALFORMED_SCRIPT = """
import sys, torch
from torch.nn.utils.rnn import PackedSequence
from lightning_gru.nn import GRU

N, batch_sizes = {N}, {batch_sizes}
torch.manual_seed(0)
data = torch.randn(N, 3)
packed = PackedSequence(data, torch.tensor(batch_sizes, dtype=torch.int64), None, None)
results = []
for module in (torch.nn.GRU(3, 4, num_layers=2, bidirectional=True),
               GRU(3, 4, num_layers=2, bidirectional=True, backend="cython"),
               GRU(3, 4, num_layers=2, bidirectional=True, backend="cython", reset_after=False),
               GRU(3, 4, num_layers=2, bidirectional=True, backend="torch", reset_after=False)):
    module.load_state_dict(torch.nn.GRU(3, 4, num_layers=2, bidirectional=True).state_dict())
    try:
        out, h_n = module(packed)
        (out.data.sum() + h_n.sum()).backward()
        results.append(("ok", tuple(out.data.shape)))
    except Exception as exc:
        results.append((type(exc).__name__, None))
print(repr(results))
"""

MALFORMED_PACKED = [
    pytest.param(4, [3, 3, 3], id="batch-sizes-sum-more-than-rows"),
    pytest.param(12, [3, 3, 3], id="batch-sizes-sum-fewer-than-rows"),
    pytest.param(6, [1, 2, 3], id="increasing-batch-sizes"),
    pytest.param(6, [3, -1, 4], id="negative-batch-size"),
    # nonincreasing, fewer rows than the data: only the check of negative sizes catches it
    pytest.param(6, [3, 2, -1], id="negative-last-batch-size"),
    pytest.param(6, [3, 3, 0], id="trailing-zero-batch-size"),  # accepted by both
]


@pytest.mark.parametrize(("N", "batch_sizes"), MALFORMED_PACKED)
def test_malformed_packed_sequence_does_not_crash(N: int, batch_sizes: list[int]) -> None:
    script = _MALFORMED_SCRIPT.format(N=N, batch_sizes=batch_sizes)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"interpreter died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    torch_result, *ours = eval(proc.stdout.strip().splitlines()[-1])  # noqa: S307
    assert ours == [torch_result] * 3  # the kernel (both cells), and the reference on torch


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_trailing_zero_batch_sizes_are_steps_without_rows(reset_after: bool) -> None:
    """torch accepts batch sizes that end in zeros; ours gives what it gives without them."""
    from torch.nn.utils.rnn import PackedSequence

    torch.manual_seed(0)
    ours = GRU(3, 4, num_layers=2, bidirectional=True, reset_after=reset_after, backend="cython")
    oracle = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    oracle.load_state_dict(ours.state_dict())
    data = torch.randn(6, 3, dtype=torch.float32)

    def outputs_and_grads(module, batch_sizes):
        x = data.clone().requires_grad_()
        out, h_n = module(PackedSequence(x, torch.tensor(batch_sizes), None, None))
        (out.data.square().sum() + h_n.sum()).backward()
        grads = [x.grad] + [p.grad for p in module.parameters()]
        module.zero_grad()
        return [out.data, h_n, *grads]

    expected = outputs_and_grads(ours, [3, 2, 1])
    if reset_after:
        expected_torch = outputs_and_grads(oracle, [3, 2, 1, 0, 0])
        for a, e in zip(expected, expected_torch, strict=True):
            assert_close(a, e, torch.float32, "trimmed batch sizes against torch")
    for a, e in zip(outputs_and_grads(ours, [3, 2, 1, 0, 0]), expected, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


@pytest.mark.parametrize("backend", ["cython", "torch"])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("batch_sizes", [[0, 0], [0]], ids=["two-steps", "one-step"])
def test_a_packed_sequence_without_rows_gives_empty_results_like_torch(
    batch_sizes, reset_after, backend
) -> None:
    from torch.nn.utils.rnn import PackedSequence

    ours = GRU(3, 4, num_layers=2, bidirectional=True, reset_after=reset_after, backend=backend)
    x = torch.randn(0, 3, requires_grad=True)
    out, h_n = ours(PackedSequence(x, torch.tensor(batch_sizes)))
    expected, expected_h_n = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)(
        PackedSequence(x, torch.tensor(batch_sizes))
    )
    assert out.data.shape == expected.data.shape == (0, 8)
    assert h_n.shape == expected_h_n.shape == (4, 0, 4)
    (out.data.sum() + h_n.sum()).backward()  # nothing to do, and no error


@pytest.mark.parametrize("backend", ["cython", "auto"])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_weights_without_hidden_units_give_empty_results_like_torch(reset_after, backend) -> None:
    weights = [torch.randn(0, 3), torch.randn(0, 0), torch.randn(0), torch.randn(0)]
    weights = [w.requires_grad_() for w in weights]
    x = torch.randn(5, 2, 3, requires_grad=True)
    out, h_n = gru(x, torch.zeros(1, 2, 0), weights, backend=backend, reset_after=reset_after)
    expected, expected_h_n = gru(x, torch.zeros(1, 2, 0), weights, backend="torch")
    assert out.shape == expected.shape == (5, 2, 0)
    assert h_n.shape == expected_h_n.shape == (1, 2, 0)
    (out.sum() + h_n.sum()).backward()  # the kernel's backward divided by H
    assert torch.equal(x.grad, torch.zeros_like(x))


# --- NaN, inf and huge values ------------------------------------------------------------------


def _poison(x: torch.Tensor, value: float) -> torch.Tensor:
    x = x.detach().clone()
    x[2, 1, 0] = value  # one feature of one step of one sequence (time-major)
    return x.requires_grad_()


# float32 with H = 16 runs the register-block products where the build has them
DTYPE_AND_H = [
    pytest.param((torch.float64, 7), id="f64-H7"),
    pytest.param((torch.float32, 16), id="f32-H16"),
]


@pytest.mark.parametrize("dtype_and_h", DTYPE_AND_H)
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")], ids=str)
def test_nan_and_inf_propagate_like_torch(value: float, reset_after: bool, dtype_and_h) -> None:
    dtype, H = dtype_and_h
    case = Case(T=6, B=3, H=H, num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case, dtype)
    inputs = make_inputs(case, dtype)
    inputs.x = _poison(inputs.x, value)
    expected = run(oracle, case, inputs.clone_leaves())
    actual = run(ours, case, inputs.clone_leaves())
    for a, e, what in zip(actual, expected, ("output", "h_n"), strict=True):
        assert torch.equal(torch.isnan(a), torch.isnan(e)), f"{what}: NaN pattern differs"
        assert torch.equal(torch.isinf(a), torch.isinf(e)), f"{what}: inf pattern differs"
        assert_close(a, e, dtype, what)
    # the other sequences of the batch are untouched
    assert torch.isfinite(actual[0][:, [0, 2]]).all()


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_nan_in_h0_propagates_like_torch(reset_after: bool) -> None:
    case = Case(T=4, B=3, num_layers=2, reset_after=reset_after)
    oracle, ours = make_pair(case)
    inputs = make_inputs(case)
    with torch.no_grad():
        inputs.h0[0, 1, 2] = float("nan")
    for a, e in zip(run(ours, case, inputs), run(oracle, case, inputs), strict=True):
        assert torch.equal(torch.isnan(a), torch.isnan(e))


@pytest.mark.parametrize("H", [6, 16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("magnitude", [1e2, 1e4, 1e30], ids=["1e2", "1e4", "1e30"])
def test_huge_finite_inputs_saturate_like_torch(
    magnitude: float, reset_after: bool, dtype: torch.dtype, H: int
) -> None:
    """Saturated sigmoid/tanh must give 0/±1, not NaN (e.g. from ``inf / inf`` in ``tanh``)."""
    case = Case(T=5, B=4, I=3, H=H, num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case, dtype)
    inputs = make_inputs(case, dtype)
    inputs.x = (inputs.x.detach() * magnitude).requires_grad_()
    expected = run(oracle, case, inputs.clone_leaves())
    actual = run(ours, case, inputs.clone_leaves())
    for a, e, what in zip(actual, expected, ("output", "h_n"), strict=True):
        assert torch.isfinite(e).all()  # the premise
        assert torch.isfinite(a).all(), f"{what}: non-finite values for finite input"
        assert_close(a, e, dtype, what)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_huge_weights_give_finite_gradients_like_torch(reset_after: bool) -> None:
    case = Case(T=5, B=4, num_layers=2, reset_after=reset_after)
    oracle, ours = make_pair(case, torch.float32)
    with torch.no_grad():
        for module in (oracle, ours):
            for p in module.parameters():
                p.mul_(1e3)
    grads = []
    for module in (oracle, ours):
        x = make_inputs(case, torch.float32).x
        out, h_n = module(x)
        (out.sum() + h_n.sum()).backward()
        grads.append(x.grad)
    assert torch.isfinite(grads[0]).all()
    assert torch.isfinite(grads[1]).all()


@pytest.mark.parametrize(
    "sizes", [[3.0, 2.0, 1.0], [3 + 0j, 2 + 0j, 1 + 0j]], ids=["float", "complex"]
)
def test_float_batch_sizes_raise_type_error_like_torch(sizes: list) -> None:
    packed = PackedSequence(torch.randn(6, 3), torch.tensor(sizes), None, None)
    with pytest.raises(TypeError):
        torch.nn.GRU(3, 4)(packed)
    with pytest.raises(TypeError, match="batch_sizes must be integers"):
        GRU(3, 4, backend="cython")(packed)


def test_batch_sizes_of_more_than_one_dimension_raise_type_error_like_torch() -> None:
    from torch.nn.utils.rnn import PackedSequence

    packed = PackedSequence(torch.randn(4, 3), torch.tensor([[2, 2]]), None, None)
    with pytest.raises(TypeError):
        torch.nn.GRU(3, 4)(packed)
    with pytest.raises(TypeError, match=r"batch_sizes must be 1-D, .* got shape \(1, 2\)"):
        GRU(3, 4, backend="cython")(packed)


def test_boolean_batch_sizes_are_refused() -> None:
    """A bool tensor converts to 0/1 sizes: refused like a float one, never read as sizes."""
    packed = PackedSequence(torch.randn(2, 3), torch.tensor([True, True]), None, None)
    with pytest.raises(RuntimeError, match="batch_sizes must be an integer tensor, got dtype"):
        GRU(3, 4, backend="cython")(packed)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("backend", ["cython", "torch"])
def test_functional_gru_refuses_empty_batch_sizes(backend: str, reset_after: bool) -> None:
    """A RuntimeError from every path (torch's own GRU, called with them, crashes the
    interpreter: ``gru`` checks them before it)."""
    weights = torch.nn.GRU(3, 4)._flat_weights
    with pytest.raises(RuntimeError, match="batch_sizes must be a non-empty 1-D tensor"):
        gru(torch.randn(2, 3), torch.zeros(1, 1, 4), weights,
            batch_sizes=torch.zeros(0, dtype=torch.int64), reset_after=reset_after,
            backend=backend)  # fmt: skip


# --- weights and states the kernel cannot take: raise like torch, never read out of bounds -----

_WRONG_ARGS_SCRIPT = """
import json, torch
from torch.func import functional_call
import lightning_gru
from lightning_gru.functional import gru
from lightning_gru.nn import GRU

def replaced(name, make, dtype=torch.float32, **kwargs):
    def call(cls, backend):
        torch.manual_seed(0)
        module = (torch.nn.GRU if cls == "torch" else GRU)(8, 256, dtype=dtype, **kwargs)
        if cls != "torch":
            module.backend = backend
        setattr(module, name, torch.nn.Parameter(make(getattr(module, name))))
        module(torch.randn(3, 2, 8, dtype=dtype))
    return call

def float32_parameters(cls, backend):
    module = (torch.nn.GRU if cls == "torch" else GRU)(8, 256).double()
    params = {k: v.detach().float() for k, v in module.named_parameters()}
    functional_call(module, params, (torch.randn(3, 2, 8, dtype=torch.float64),))

def functional(x, hx, layers=2, bidirectional=False, **kwargs):
    weights = torch.nn.GRU(4, 5, layers, bidirectional=bidirectional)._flat_weights
    def call(cls, backend):
        gru(x(), hx(), weights, layers, bidirectional, backend=cls if cls == "torch" else backend,
            **kwargs)
    return call

f64 = torch.float64
CASES = {
    "weight-f32-in-f64-module": replaced("weight_hh_l0", lambda w: w.detach().float(), f64),
    "weight-hh-wrong-shape": replaced("weight_hh_l0", lambda w: torch.randn(w.size(0), 1)),
    "weight-ih-l1-of-layer-0-shape": replaced(
        "weight_ih_l1", lambda w: torch.randn(w.size(0), 8), num_layers=2),
    "weight-ih-l1-reverse-wrong-shape": replaced(
        "weight_ih_l1_reverse", lambda w: torch.randn(w.size(0), 3), num_layers=2,
        bidirectional=True),
    "bias-of-one-value": replaced("bias_hh_l0", lambda w: torch.randn(1)),
    "functional-call-float32-parameters": float32_parameters,
    "functional-wrong-input-size": functional(lambda: torch.randn(3, 2, 7),
                                              lambda: torch.randn(2, 2, 5)),
    "functional-hx-batch-too-small": functional(lambda: torch.randn(3, 64, 4),
                                                lambda: torch.randn(2, 2, 5)),
    "functional-hx-too-few-layers": functional(lambda: torch.randn(3, 2, 4),
                                               lambda: torch.randn(1, 2, 5)),
    "functional-hx-bi-too-few": functional(lambda: torch.randn(3, 2, 4),
                                           lambda: torch.randn(2, 2, 5), bidirectional=True),
    "functional-hx-float64": functional(lambda: torch.randn(3, 2, 4),
                                        lambda: torch.randn(2, 2, 5, dtype=f64)),
    "functional-input-float64": functional(lambda: torch.randn(3, 2, 4, dtype=f64),
                                           lambda: torch.randn(2, 2, 5, dtype=f64)),
    "functional-empty-sequence": functional(lambda: torch.randn(0, 2, 4),
                                            lambda: torch.randn(2, 2, 5)),
    "functional-packed-hx-batch-too-small": functional(
        lambda: torch.randn(5, 4), lambda: torch.randn(1, 1, 5), layers=1,
        batch_sizes=torch.tensor([2, 2, 1])),
    "functional-float-batch-sizes": functional(
        lambda: torch.randn(5, 4), lambda: torch.randn(1, 2, 5), layers=1,
        batch_sizes=torch.tensor([2.0, 2.5, 0.5])),
    "functional-hx-one-dimensional": functional(lambda: torch.randn(3, 2, 4),
                                                lambda: torch.randn(5), layers=1),
    "functional-negative-dropout": functional(lambda: torch.randn(3, 2, 4),
                                              lambda: torch.randn(2, 2, 5), dropout=-0.5,
                                              training=True),
    "functional-dropout-above-one": functional(lambda: torch.randn(3, 2, 4),
                                               lambda: torch.randn(2, 2, 5), dropout=1.5,
                                               training=True),
}
results = {}
for name, call in CASES.items():
    outcome = []
    for cls, backend in (("torch", None), ("ours", "auto"), ("ours", "cython")):
        try:
            call(cls, backend)
            outcome.append(["ok", ""])
        except Exception as exc:
            outcome.append([type(exc).__name__, str(exc)])
    results[name] = outcome
print(json.dumps(results))
"""

# case: regex that our message must match
WRONG_ARGS = {
    "weight-f32-in-f64-module": r"weight_hh_l0 must be a cpu torch.float64 tensor",
    "weight-hh-wrong-shape": r"weight_hh_l0 .*shape \[768, 256\].*\[768, 1\]",
    "weight-ih-l1-of-layer-0-shape": r"weight_ih_l1 .*shape \[768, 256\].*\[768, 8\]",
    "weight-ih-l1-reverse-wrong-shape": r"weight_ih_l1_reverse .*shape \[768, 512\]",
    "bias-of-one-value": r"bias_hh_l0 .*shape \[768\].*\[1\]",
    "functional-call-float32-parameters": r"dtype",
    "functional-wrong-input-size": r"input_size. Expected 4, got 7",
    "functional-hx-batch-too-small": r"Expected hidden size \(2, 64, 5\), got \[2, 2, 5\]",
    "functional-hx-too-few-layers": r"Expected hidden size \(2, 2, 5\), got \[1, 2, 5\]",
    "functional-hx-bi-too-few": r"Expected hidden size \(4, 2, 5\), got \[2, 2, 5\]",
    "functional-hx-float64": r"hx is a cpu torch.float64 tensor",
    "functional-input-float64": r"weight_ih_l0 must be a cpu torch.float64 tensor",
    "functional-empty-sequence": r"sequence length",
    "functional-packed-hx-batch-too-small": r"Expected hidden size \(1, 2, 5\)",
    "functional-float-batch-sizes": r"batch_sizes must be an integer tensor, got .*float32",
    "functional-hx-one-dimensional": r"Expected hidden size \(1, 2, 5\), got \[5\]",
    "functional-negative-dropout": r"dropout probability .* got -0.5",
    "functional-dropout-above-one": r"dropout probability .* got 1.5",
}


@pytest.fixture(scope="module")
def wrong_args_outcomes() -> dict:
    """Every case of ``_WRONG_ARGS_SCRIPT`` run once, in a subprocess: a kernel reading out of
    bounds fails these tests instead of killing the session."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WRONG_ARGS_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"interpreter died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("case", "match"), WRONG_ARGS.items(), ids=list(WRONG_ARGS))
def test_weights_and_states_the_kernel_cannot_take_raise(wrong_args_outcomes, case, match) -> None:
    (torch_type, _), *ours = wrong_args_outcomes[case]
    for backend, (error_type, message) in zip(("auto", "cython"), ours, strict=True):
        if torch_type != "ok":  # torch broadcasts a one-value bias; ours refuses it
            assert error_type == torch_type, (backend, message)
        else:
            assert error_type == "RuntimeError", (backend, message)
        assert re.search(match, message), (backend, message)


def test_calls_too_large_for_the_kernels_indexing_go_to_torch_or_are_refused() -> None:
    """The kernel indexes rows with C ints: a buffer of 2**31 elements or more would wrap."""
    from lightning_gru.functional._traceable import kernel_fits

    x = torch.zeros(1, 1, 1).expand(2**16, 2**15, 1)  # 2**31 rows, nothing allocated
    assert not kernel_fits(x, torch.zeros(1, 2**15, 1), 1)
    assert not kernel_fits(torch.zeros(2**22, 1).expand(2**22, 512), torch.zeros(1, 1, 1), 1)
    assert kernel_fits(torch.zeros(100, 64, 100), torch.zeros(1, 64, 256), 1)
    with pytest.raises(ValueError, match=r"fewer than 2\*\*31 elements .* backend='auto'"):
        GRU(1, 1, backend="cython")(x)


@pytest.mark.parametrize(
    ("input_size", "hidden_size", "bidirectional", "fits"),
    [
        pytest.param(1, 26754, False, True, id="W_hh-just-fits"),
        pytest.param(1, 26755, False, False, id="W_hh-too-large"),  # the Cho cell crashed
        pytest.param(715827882, 1, False, True, id="W_ih-just-fits"),
        pytest.param(715827883, 1, False, False, id="W_ih-too-large"),
        pytest.param(1, 18918, True, True, id="upper-W_ih-just-fits"),
        pytest.param(1, 18919, True, False, id="upper-W_ih-too-large"),
    ],
)
def test_weights_too_large_for_the_kernels_indexing_go_to_torch_or_are_refused(
    input_size: int, hidden_size: int, bidirectional: bool, fits: bool
) -> None:
    """Offsets into a weight of 2**31 elements or more would wrap too: at 32768 hidden units
    ``reset_after=False`` read W_hn 8 GB before W_hh. The weights here are expanded views of
    one element (a layer's W_ih is (3H, I) below and (3H, D * H) above), nothing allocated."""
    from lightning_gru.functional._traceable import kernel_fits

    H, D = hidden_size, 2 if bidirectional else 1
    x = torch.zeros(1, 1, 1).expand(1, 1, input_size)
    h0 = torch.zeros(1, 1, 1).expand(D, 1, H)
    assert kernel_fits(x, h0, D) is fits
    if fits:
        return
    one = torch.zeros(1, 1)
    weights = [one.expand(3 * H, input_size), one.expand(3 * H, H)] * D
    with pytest.raises(ValueError, match=r"and per weight .* backend='auto'"):
        gru(x, h0, weights, 1, bidirectional, reset_after=False, backend="cython")


def test_a_kernel_that_failed_to_import_is_reported_once_and_torch_runs(monkeypatch) -> None:
    """An installed tree without the compiled extension (a source checkout shadowing the
    installed package) must not fall back to torch's GRU in silence."""
    import warnings

    import lightning_gru.functional._traceable as driver

    functional = sys.modules["lightning_gru.functional.gru"]
    monkeypatch.setattr(driver, "_ext", None)
    monkeypatch.setattr(driver, "_IMPORT_ERROR", ImportError("no module named _gru"))
    functional._warn_kernel_missing.cache_clear()
    torch.manual_seed(0)
    ours, reference = GRU(3, 4), torch.nn.GRU(3, 4)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(5, 2, 3)
    with pytest.warns(RuntimeWarning, match=r"failed to import \(no module named _gru\)"):
        output, _ = ours(x)
    torch.testing.assert_close(output, reference(x)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        ours(x)
    with pytest.raises(RuntimeError, match="needs the compiled kernel"):
        GRU(3, 4, backend="cython")(x)
    functional._warn_kernel_missing.cache_clear()


def test_a_tree_without_the_extension_says_it_is_missing(tmp_path) -> None:
    """The package copied without its compiled ``_gru`` (a checkout that was never built,
    shadowing the installed package): the warning names the missing module, not an import
    cycle."""
    import shutil
    from pathlib import Path

    import lightning_gru

    package = Path(lightning_gru.__file__).parent
    shutil.copytree(
        package, tmp_path / "lightning_gru", ignore=shutil.ignore_patterns("*.so", "*.pyd")
    )
    script = textwrap.dedent(
        """
        import sys, warnings, torch, lightning_gru
        assert lightning_gru.__file__.startswith(sys.argv[1]), lightning_gru.__file__
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lightning_gru.nn.GRU(2, 3)(torch.randn(4, 1, 2))
        print([str(w.message) for w in caught])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "failed to import (No module named 'lightning_gru._ext._gru')" in result.stdout


# A GRU with backend "auto", then "cython", in a fresh interpreter where the build's record,
# put in sys.modules first ({record}), makes the kernel refuse to load: it prints the warnings
# of the first and the error of the second.
REFUSED_KERNEL_SCRIPT = """
import sys, types, warnings, torch
{record}
import lightning_gru
torch.manual_seed(0)
ours, reference = lightning_gru.nn.GRU(2, 3), torch.nn.GRU(2, 3)
reference.load_state_dict(ours.state_dict())
x = torch.randn(4, 1, 2)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    output, _ = ours(x)
torch.testing.assert_close(output, reference(x)[0])
print([str(w.message) for w in caught])
try:
    lightning_gru.nn.GRU(2, 3, backend="cython")(x)
except RuntimeError as error:
    print("cython:", error)
"""


def _run_with_refused_kernel(record: str) -> str:
    script = REFUSED_KERNEL_SCRIPT.format(record=record)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "backend='auto' runs torch's GRU" in result.stdout
    assert "cython: backend='cython' needs the compiled kernel" in result.stdout
    return result.stdout


def test_a_kernel_built_for_another_cpu_is_refused_and_torch_runs() -> None:
    """A native build (-march=native) on a CPU without one of its instruction sets, as from a
    pip cache that machines of different kinds share: loaded, the kernel would stop the
    interpreter with an illegal instruction. It is refused at import, with a message that
    names what is missing and how to rebuild, and backend="auto" runs torch's GRU."""
    output = _run_with_refused_kernel(
        'sys.modules["lightning_gru._ext._native_cpu"] = types.SimpleNamespace('
        'BUILT_FOR=frozenset({"avx2", "avx1024_imaginary"}))'
    )
    assert "compiled (-march=native) for a CPU with avx1024_imaginary, which this CPU" in output
    assert "--no-cache-dir --force-reinstall" in output


def test_a_kernel_built_from_other_sources_is_refused_and_torch_runs() -> None:
    """A checkout updated or edited without a rebuild: the old compiled kernel and glue would
    run with the new Python code around them. The build's record of its sources no longer
    matches them, so the kernel is refused at import, naming the file, and torch's GRU runs."""
    output = _run_with_refused_kernel(
        "import importlib.machinery\n"
        'sys.modules["lightning_gru._ext._built_from"] = types.SimpleNamespace(SOURCES={\n'
        '    ".cpython-309-another-python.so": {"_ext/_gru.pyx": "1" * 64},\n'
        "    importlib.machinery.EXTENSION_SUFFIXES[0]: {\n"
        '        "_ext/_gru.pyx": "0" * 64, "_ext/not_installed.h": "0" * 64}})'
    )
    # (a source not installed has not changed)
    assert "other sources: lightning_gru/_ext/_gru.pyx changed since the build)" in output


def test_a_record_cut_short_refuses_the_kernel_and_torch_runs() -> None:
    """An interrupted build may leave the record unreadable: the kernel is refused, not the
    package (backend="torch" must still import)."""
    output = _run_with_refused_kernel(
        "class CutShort:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        '        if name == "lightning_gru._ext._built_from":\n'
        '            raise SyntaxError("unterminated string literal")\n'
        "sys.meta_path.insert(0, CutShort())"
    )
    assert "the build's record of its sources is unreadable" in output


def test_the_build_records_the_sources_it_compiled(tmp_path: Path) -> None:
    """setup.py records the digest of every source of the compiled modules, and this build
    loaded because the sources beside it are those."""
    from lightning_gru._ext import BUILT_FROM, SOURCES, changed_sources, check_sources

    package = Path(lightning_gru.__file__).parent
    kernel_sources = [*package.glob("_ext/*.pyx"), *package.glob("_ext/*.h")]
    expected = {p.relative_to(package).as_posix() for p in kernel_sources}
    assert set(BUILT_FROM) == expected | {"functional/_cython.py"}
    assert changed_sources(BUILT_FROM, package) == []
    assert BUILT_FROM is SOURCES[importlib.machinery.EXTENSION_SUFFIXES[0]]  # this Python's
    (tmp_path / "_ext").mkdir()
    (tmp_path / "_ext" / "a.h").write_bytes(b"one")
    (tmp_path / "_ext" / "b.h").write_bytes(b"two")
    recorded = {name: hashlib.sha256(b"one").hexdigest() for name in ("_ext/a.h", "_ext/b.h")}
    recorded["_ext/gone.h"] = "0" * 64
    assert changed_sources(recorded, tmp_path) == ["_ext/b.h"]
    with pytest.raises(ImportError, match=f"{tmp_path.name}/_ext/b.h changed since the build"):
        check_sources(recorded, tmp_path)


def test_the_build_records_the_instruction_sets_it_may_use() -> None:
    """setup.py records the building CPU's vector extensions for a native build (those with
    which the register blocks are compiled among them), none for a portable one; this CPU has
    them all, or the kernel would not have loaded."""
    from lightning_gru._ext import _cpu_flags, _gru, check_cpu
    from lightning_gru._ext._native_cpu import BUILT_FOR

    flags = _cpu_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo: the check is skipped on this system")
    assert BUILT_FOR <= flags
    if _gru.has_block_gemm():  # a native build on an AVX2 or AVX-512 CPU
        assert BUILT_FOR & {"avx2", "avx512f"}
    check_cpu(BUILT_FOR, flags)
    check_cpu(frozenset({"avx512f"}), None)  # flags unknown: nothing to say
    with pytest.raises(ImportError, match=r"for a CPU with avx512f, fma, which this CPU lacks"):
        check_cpu(frozenset({"avx512f", "fma", "sse4_2"}), frozenset({"sse4_2"}))


@pytest.mark.parametrize("name", ["weight_hh_l0", "bias_ih_l0", "bias_hh_l0"])
@pytest.mark.parametrize("backend", ["auto", "cython"])
def test_a_parameter_set_to_none_raises_type_error_like_torch(name: str, backend: str) -> None:
    x = torch.randn(5, 2, 3)
    oracle, ours = torch.nn.GRU(3, 4), GRU(3, 4, backend=backend)
    setattr(oracle, name, None)
    setattr(ours, name, None)
    with pytest.raises(TypeError):
        oracle(x)
    with pytest.raises(TypeError, match="expected Tensor as element"):
        ours(x)
