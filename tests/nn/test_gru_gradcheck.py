"""``torch.autograd.gradcheck`` / ``gradgradcheck`` of the Cython backend in float64, both cells.

The analytic gradients of the kernel's backward pass (input, ``h0``, every weight and bias) are
compared with finite differences of its own forward pass, independently of any oracle; the
second-order ones (``create_graph=True``) likewise.
"""

import pytest
import torch
from _gru_helpers import RESET_AFTER, Case, Inputs, make_inputs, make_pair
from torch.nn.utils.rnn import PackedSequence

from lightning_gru._ext import _gru
from lightning_gru.functional import _cython

CASES = [
    pytest.param(Case(T=3, B=2, I=2, H=3), id="L1"),
    pytest.param(Case(T=3, B=2, I=2, H=3, num_layers=2, bidirectional=True), id="L2-bi"),
    pytest.param(Case(T=3, B=2, I=2, H=3, bias=False, layout="batch_first"), id="nobias-bf"),
    pytest.param(Case(T=4, B=1, I=2, H=2, layout="unbatched", bidirectional=True), id="unbatched"),
    pytest.param(Case(I=2, H=3, layout="packed", lengths=(2, 4, 1)), id="packed"),
    pytest.param(
        Case(I=2, H=2, layout="packed", lengths=(1, 3, 2), num_layers=2, bidirectional=True),
        id="packed-L2-bi",
    ),
]
SECOND_ORDER_CASES = [
    pytest.param(Case(T=3, B=2, I=2, H=2, num_layers=2, bidirectional=True), id="L2-bi"),
    pytest.param(Case(I=2, H=2, layout="packed", lengths=(1, 3, 2)), id="packed"),
]


def _function_and_inputs(case: Case) -> tuple:
    """``f(x, h0, *weights) -> (output, h_n)`` of our module, and the float64 leaves to check.

    The parameters themselves are gradcheck inputs: it perturbs them in place, and the analytic
    gradients are taken with respect to them (no ``functional_call`` needed).
    """
    _, ours = make_pair(case, torch.float64)
    inputs = make_inputs(case, torch.float64)

    def f(x, h0, *weights):
        out, h_n = ours(*Inputs(x, h0, inputs.lengths).module_args(case))
        if isinstance(out, PackedSequence):
            out = out.data  # (N, D * H)
        return out, h_n

    return f, (inputs.x, inputs.h0, *ours.parameters())


@pytest.fixture(params=["n-kept", "recomputed-in-chunks"])
def backward_layout(request, monkeypatch):
    """Small calls keep n for the backward; larger ones recompute it (reset_after) a chunk of
    steps at a time: forced here with chunks of one step."""
    if request.param == "recomputed-in-chunks":
        monkeypatch.setattr(_cython, "KEEP_N_MAX_FLOATS", 0)
        saved = _gru.set_tuning()
        _gru.set_tuning(chunk_min_floats=0)
        request.addfinalizer(lambda: _gru.set_tuning(*saved))
    return request.param


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("case", CASES)
def test_gradcheck(case: Case, reset_after: bool, backward_layout) -> None:
    f, leaves = _function_and_inputs(case.with_(reset_after=reset_after))
    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("case", SECOND_ORDER_CASES)
def test_gradgradcheck(case: Case, reset_after: bool) -> None:
    """Second-order gradients (``create_graph=True``, e.g. a gradient penalty)."""
    f, leaves = _function_and_inputs(case.with_(reset_after=reset_after))
    assert torch.autograd.gradgradcheck(f, leaves, eps=1e-6, atol=1e-5)
