"""CUDA behaviour: torch's cuDNN GRU, the pure-torch path for ``reset_after=False``, errors.

Skipped where no GPU is present.
"""

import pytest
import torch
from _gru_helpers import RESET_AFTER, Case, check_parity, make_inputs, make_pair, run

from lightning_gru.nn import GRU
from lightning_gru.nn.reference import ReferenceGRU

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CUDA_CASES = [
    pytest.param(Case(num_layers=2, bidirectional=True), id="L2-bi"),
    pytest.param(Case(layout="batch_first", bias=False), id="bf-nobias"),
    pytest.param(Case(layout="unbatched", with_h0=False), id="unbatched"),
    pytest.param(Case(layout="packed", num_layers=2, bidirectional=True), id="packed-L2-bi"),
]


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("case", CUDA_CASES)
def test_cuda_reset_after_matches_torch(case: Case, backend: str) -> None:
    """On CUDA, ``reset_after=True`` is torch's own (cuDNN) GRU: same results as torch's."""
    oracle, ours = make_pair(case, torch.float64, backend=backend, device="cuda")
    check_parity(oracle, ours, case, make_inputs(case, device="cuda"), torch.float64)


@pytest.mark.parametrize("case", CUDA_CASES)
def test_cuda_reset_before_matches_reference_on_cpu(case: Case) -> None:
    """``reset_after=False`` on CUDA (pure torch) against the reference on CPU, in float64."""
    case = case.with_(reset_after=False)
    cpu_oracle, ours = make_pair(case, torch.float64, device="cuda")
    cpu_oracle = cpu_oracle.cpu()
    inputs = make_inputs(case)
    expected = run(cpu_oracle, case, inputs.clone_leaves())
    cuda_inputs = inputs.clone_leaves()
    cuda_inputs.x = cuda_inputs.x.detach().cuda().requires_grad_()
    if cuda_inputs.h0 is not None:
        cuda_inputs.h0 = cuda_inputs.h0.detach().cuda().requires_grad_()
    actual = run(ours, case, cuda_inputs)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a.cpu(), e, rtol=1e-10, atol=1e-12)
    (actual[0].sum() + actual[1].sum()).backward()
    assert torch.isfinite(cuda_inputs.x.grad).all()


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_cython_backend_on_cuda_is_a_clear_error(reset_after: bool) -> None:
    ours = GRU(3, 4, reset_after=reset_after, backend="cython", device="cuda")
    with pytest.raises(ValueError, match="cython"):
        ours(torch.randn(5, 2, 3, device="cuda"))


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize(
    "where",
    [
        pytest.param(("cuda", "cpu", None), id="module-cuda-input-cpu"),
        pytest.param(("cpu", "cuda", None), id="module-cpu-input-cuda"),
        pytest.param(("cuda", "cuda", "cpu"), id="h0-cpu"),
        pytest.param(("cpu", "cpu", "cuda"), id="h0-cuda"),
    ],
)
def test_device_mismatch_raises_like_torch(where: tuple, reset_after: bool) -> None:
    module_device, input_device, h0_device = where
    x = torch.randn(5, 2, 3, device=input_device)
    args = (x,) if h0_device is None else (x, torch.zeros(1, 2, 4, device=h0_device))
    with pytest.raises(Exception) as torch_exc:  # noqa: PT011 -- the type is what we compare
        torch.nn.GRU(3, 4, device=module_device)(*args)
    ours = GRU(3, 4, device=module_device, reset_after=reset_after)
    with pytest.raises(type(torch_exc.value), match="device|cuda|cpu"):
        ours(*args)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_module_moves_between_devices(reset_after: bool) -> None:
    torch.manual_seed(0)
    ours = GRU(3, 4, num_layers=2, reset_after=reset_after).double()
    reference = ReferenceGRU(3, 4, num_layers=2, reset_after=reset_after).double()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    expected, _ = reference(x)
    out_cuda, _ = ours.cuda()(x.cuda())
    out_cpu, _ = ours.cpu()(x)
    torch.testing.assert_close(out_cuda.cpu(), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out_cpu, expected, rtol=1e-10, atol=1e-12)
