"""Shared helpers of the GRU tests: build (oracle, ours) pairs, inputs, and compare them.

The oracle is ``torch.nn.GRU`` for the cell it has (``reset_after=True``) and
:class:`lightning_gru.nn.reference.ReferenceGRU` for the other one. Both members of a pair hold
identical parameters. :func:`check_parity` runs both on cloned leaves with the same upstream
gradients and compares the output, ``h_n`` and the gradient of every input and parameter.
"""

from dataclasses import dataclass, replace

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from lightning_gru.nn import GRU
from lightning_gru.nn.reference import ReferenceGRU

# (rtol, atol); atol is multiplied by the largest magnitude of the expected tensor.
TOLERANCES = {torch.float64: (1e-10, 1e-12), torch.float32: (1e-5, 1e-5)}
LAYOUTS = ("dense", "batch_first", "unbatched", "packed", "packed_sorted")
DTYPES = [pytest.param(torch.float64, id="f64"), pytest.param(torch.float32, id="f32")]
RESET_AFTER = [pytest.param(True, id="torch"), pytest.param(False, id="cho")]


@dataclass(frozen=True)
class Case:
    """One GRU configuration and input layout.

    ``layout`` is ``dense`` (``(T, B, I)``), ``batch_first`` (``(B, T, I)``), ``unbatched``
    (``(T, I)``), ``packed`` (a ``PackedSequence`` with unsorted lengths, ``enforce_sorted=False``)
    or ``packed_sorted`` (lengths sorted in decreasing order, ``enforce_sorted=True``).
    """

    T: int = 5
    B: int = 4
    I: int = 3  # noqa: E741
    H: int = 7
    num_layers: int = 1
    bidirectional: bool = False
    bias: bool = True
    layout: str = "dense"
    with_h0: bool = True
    reset_after: bool = True
    lengths: tuple[int, ...] | None = None  # for the packed layouts; default: derived from T, B

    @property
    def D(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def batch_first(self) -> bool:
        return self.layout == "batch_first"

    def packed_lengths(self) -> list[int]:
        """Lengths of the packed layouts: unsorted (with ties and the maximum ``T``) or sorted."""
        if self.lengths is not None:
            return list(self.lengths)
        lengths = [max(1, self.T - (3 * b) % (self.T + 1)) for b in range(self.B)]
        lengths[min(1, self.B - 1)] = self.T  # at least one full-length sequence
        return sorted(lengths, reverse=True) if self.layout == "packed_sorted" else lengths

    def with_(self, **changes) -> "Case":
        return replace(self, **changes)

    def __str__(self) -> str:
        parts = [f"T{self.T}B{self.B}I{self.I}H{self.H}", f"L{self.num_layers}", self.layout]
        parts += ["bi"] if self.bidirectional else []
        parts += [] if self.bias else ["nobias"]
        parts += ["h0"] if self.with_h0 else ["noh0"]
        parts += [] if self.reset_after else ["cho"]
        return "-".join(parts)


def make_pair(
    case: Case,
    dtype: torch.dtype = torch.float64,
    *,
    backend: str = "cython",
    dropout: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[torch.nn.GRU, GRU]:
    """``(oracle, ours)`` with identical parameters, both in training mode."""
    kwargs = dict(
        input_size=case.I,
        hidden_size=case.H,
        num_layers=case.num_layers,
        bias=case.bias,
        batch_first=case.batch_first,
        dropout=dropout,
        bidirectional=case.bidirectional,
        dtype=dtype,
    )
    torch.manual_seed(seed)
    ours = GRU(**kwargs, device=device, reset_after=case.reset_after, backend=backend)
    if case.reset_after:
        oracle = torch.nn.GRU(**kwargs)
    else:
        oracle = ReferenceGRU(**kwargs, reset_after=False)
    oracle.load_state_dict(ours.state_dict())
    return oracle.to(device), ours


@dataclass
class Inputs:
    """Leaf tensors of one forward call: ``x`` as the module sees it before packing, ``h0``."""

    x: torch.Tensor
    h0: torch.Tensor | None
    lengths: list[int] | None

    def clone_leaves(self) -> "Inputs":
        def leaf(t):
            return None if t is None else t.detach().clone().requires_grad_(t.requires_grad)

        return Inputs(leaf(self.x), leaf(self.h0), self.lengths)

    def module_args(self, case: Case) -> tuple:
        x = self.x
        if self.lengths is not None:
            x = pack_padded_sequence(
                x,
                torch.tensor(self.lengths),
                batch_first=case.batch_first,
                enforce_sorted=case.layout == "packed_sorted",
            )
        return (x,) if self.h0 is None else (x, self.h0)


def make_inputs(
    case: Case,
    dtype: torch.dtype = torch.float64,
    *,
    seed: int = 1,
    device: str | torch.device = "cpu",
    requires_grad: bool = True,
) -> Inputs:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        t = torch.randn(*shape, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
        return t.requires_grad_(requires_grad)

    lengths = None
    T, B = case.T, case.B
    if case.layout.startswith("packed"):
        lengths = case.packed_lengths()
        T, B = max(lengths), len(lengths)
    if case.layout == "unbatched":
        x = randn(T, case.I)  # (T, I)
        h0 = randn(case.num_layers * case.D, case.H) if case.with_h0 else None
    else:
        x = randn(B, T, case.I) if case.batch_first else randn(T, B, case.I)
        h0 = randn(case.num_layers * case.D, B, case.H) if case.with_h0 else None
    return Inputs(x, h0, lengths)


def run(module: torch.nn.GRU, case: Case, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward; a packed output is returned as its ``.data`` after checking its metadata."""
    out, h_n = module(*inputs.module_args(case))
    if inputs.lengths is not None:
        assert isinstance(out, PackedSequence), f"packed input gave {type(out).__name__} out"
        packed_in = inputs.module_args(case)[0]
        assert torch.equal(out.batch_sizes, packed_in.batch_sizes)
        for name in ("sorted_indices", "unsorted_indices"):
            expected, actual = getattr(packed_in, name), getattr(out, name)
            assert (expected is None and actual is None) or torch.equal(actual, expected), name
        out = out.data
    return out, h_n


def assert_close(actual, expected, dtype: torch.dtype, what: str, scale_tol: float = 1.0) -> None:
    """``torch.testing.assert_close`` with the dtype's tolerances, ``atol`` scaled to the data."""
    rtol, atol = TOLERANCES[dtype]
    scale = 1.0
    if expected.numel():
        finite = expected[torch.isfinite(expected)]
        scale = max(1.0, finite.abs().max().item()) if finite.numel() else 1.0
    torch.testing.assert_close(
        actual,
        expected,
        rtol=rtol * scale_tol,
        atol=atol * scale * scale_tol,
        equal_nan=True,
        msg=lambda m: f"{what}: {m}",
    )


def outputs_and_grads(
    module: torch.nn.GRU, case: Case, inputs: Inputs, grad_seed: int = 2
) -> dict[str, torch.Tensor]:
    """Output, ``h_n`` and the gradients of a random linear function of both w.r.t. every leaf."""
    out, h_n = run(module, case, inputs)
    result = {"output": out.detach(), "h_n": h_n.detach()}
    leaves = {"input": inputs.x, "h0": inputs.h0}
    # (a torch.compile'd module names its parameters "_orig_mod.<name>")
    leaves |= {name.removeprefix("_orig_mod."): p for name, p in module.named_parameters()}
    leaves = {k: v for k, v in leaves.items() if v is not None and v.requires_grad}
    if not leaves or not (out.requires_grad or h_n.requires_grad):
        return result
    gen = torch.Generator().manual_seed(grad_seed)
    g_out = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out)
    g_h = torch.randn(h_n.shape, generator=gen, dtype=torch.float64).to(h_n)
    grads = torch.autograd.grad((out, h_n), list(leaves.values()), (g_out, g_h))
    result |= {f"grad[{name}]": g for name, g in zip(leaves, grads, strict=True)}
    return result


def check_parity(
    oracle: torch.nn.GRU,
    ours: torch.nn.GRU,
    case: Case,
    inputs: Inputs,
    dtype: torch.dtype,
    scale_tol: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Compare output, ``h_n`` and all gradients of ``ours`` with ``oracle``; returns ours."""
    expected = outputs_and_grads(oracle, case, inputs.clone_leaves())
    actual = outputs_and_grads(ours, case, inputs.clone_leaves())
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key].shape == expected[key].shape, key
        assert actual[key].dtype == expected[key].dtype, key
        assert_close(actual[key], expected[key], dtype, f"{case} {dtype} {key}", scale_tol)
    return actual
