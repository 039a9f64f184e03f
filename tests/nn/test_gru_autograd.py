"""Autograd corner cases where ``torch.nn.GRU`` sets the expectation: in-place edits of inputs,
outputs and weights around the backward pass, second-order gradients, saved-tensor hooks and
activation checkpointing, concurrent calls, and calls in a forked child.
"""

import contextlib
import multiprocessing
import re
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from _gru_helpers import (
    RESET_AFTER,
    Case,
    assert_close,
    check_parity,
    make_inputs,
    make_pair,
    outputs_and_grads,
    run,
)

from lightning_gru.functional import _cython, _traceable
from lightning_gru.nn import GRU


def _backward_or_exception(module, case: Case, edit) -> tuple[str, list[torch.Tensor] | None]:
    """Forward, apply ``edit(x, out, h_n, module)``, backward; the gradients or the error type."""
    inputs = make_inputs(case)
    x = inputs.x * 1.0  # a non-leaf, so that it can be edited in place
    try:
        out, h_n = module(x, inputs.h0)
        out, h_n = edit(x, out, h_n, module) or (out, h_n)
        (out.square().sum() + h_n.sum()).backward()
    except RuntimeError as exc:
        return type(exc).__name__, None
    return "ok", [inputs.x.grad, inputs.h0.grad, *(p.grad for p in module.parameters())]


def _scale_output(x, out, h_n, module):
    out.mul_(2.0)


def _relu_output(x, out, h_n, module):
    torch.relu_(out)


def _dropout_output_inplace(x, out, h_n, module):
    torch.manual_seed(0)
    torch.nn.functional.dropout(out, 0.5, training=True, inplace=True)


def _scale_h_n(x, out, h_n, module):
    h_n.mul_(2.0)


def _edit_input(x, out, h_n, module):
    x.add_(1.0)


def _edit_weight(x, out, h_n, module):
    with torch.no_grad():
        module.weight_hh_l0.add_(0.1)


EDITS = [
    pytest.param(_scale_h_n, id="h_n.mul_"),
    pytest.param(_edit_input, id="input.add_"),
    pytest.param(_edit_weight, id="weight.add_"),
]
OUTPUT_EDITS = [
    pytest.param(_scale_output, id="output.mul_"),
    pytest.param(_relu_output, id="relu_(output)"),
    pytest.param(_dropout_output_inplace, id="dropout(output, inplace=True)"),
]


def _compare_edit(edit, reset_after: bool) -> None:
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case)
    expected_status, expected = _backward_or_exception(oracle, case, edit)
    status, actual = _backward_or_exception(ours, case, edit)
    assert status == expected_status
    if expected is not None:
        for a, e in zip(actual, expected, strict=True):
            assert_close(a, e, torch.float64, "gradient after the edit")


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("edit", EDITS)
def test_in_place_edits_like_torch(edit, reset_after: bool) -> None:
    """Where torch raises (a saved tensor was modified) ours raises; where it works, same grads."""
    _compare_edit(edit, reset_after)


@pytest.mark.parametrize("n_kept", [True, False], ids=["n-kept", "n-recomputed"])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("edit", OUTPUT_EDITS)
def test_in_place_edit_of_output_like_torch(edit, reset_after: bool, n_kept, monkeypatch) -> None:
    """The backward then runs the forward again, keeping its states: with n kept for the
    backward (small calls) or not (the backward recomputes it)."""
    monkeypatch.setattr(_cython, "KEEP_N_MAX_FLOATS", 1 << 30 if n_kept else 0)
    _compare_edit(edit, reset_after)


@pytest.mark.parametrize("kept_in_forward", [True, False])
def test_backward_follows_the_layout_its_forward_chose(kept_in_forward, monkeypatch) -> None:
    """Whether n is kept is decided in the forward; a backward after the size rule changed
    (a second backward recomputes the forward under the new rule) still reads the right
    buffers."""
    case = Case(num_layers=2, bidirectional=True)
    oracle, ours = make_pair(case)
    expected = outputs_and_grads(oracle, case, make_inputs(case))
    monkeypatch.setattr(_cython, "KEEP_N_MAX_FLOATS", 1 << 30 if kept_in_forward else 0)
    inputs = make_inputs(case)
    out, h_n = run(ours, case, inputs)
    monkeypatch.setattr(_cython, "KEEP_N_MAX_FLOATS", 0 if kept_in_forward else 1 << 30)
    gen = torch.Generator().manual_seed(2)  # the cotangents of outputs_and_grads
    cotangents = (
        torch.randn(out.shape, generator=gen, dtype=torch.float64),
        torch.randn(h_n.shape, generator=gen, dtype=torch.float64),
    )
    leaves = [inputs.x, inputs.h0, *ours.parameters()]
    for _ in range(2):  # the second backward recomputes the forward under the changed rule
        grads = torch.autograd.grad((out, h_n), leaves, cotangents, retain_graph=True)
        names = ["input", "h0", *dict(ours.named_parameters())]
        for name, actual in zip(names, grads, strict=True):
            assert_close(actual, expected[f"grad[{name}]"], torch.float64, name)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_second_order_gradient_is_right_or_refused(reset_after: bool) -> None:
    """A gradient penalty (``create_graph=True``) must match torch or raise, never differ."""
    case = Case(num_layers=2, reset_after=reset_after)
    oracle, ours = make_pair(case)
    results = []
    for module in (oracle, ours):
        x = make_inputs(case).x
        try:
            out, h_n = module(x)
            (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
            (out.square().sum() + g.square().sum()).backward()
        except RuntimeError:
            results.append(None)
            continue
        results.append([p.grad for p in module.parameters()])
    if results[1] is not None:  # ours accepted create_graph: the result must be right
        for a, e in zip(results[1], results[0], strict=True):
            assert_close(a, e, torch.float64, "second-order gradient")


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_batched_gradients_like_torch(reset_after: bool) -> None:
    """Autograd's vmap over the backward (``is_grads_batched``, ``jacobian`` and ``hessian``
    with ``vectorize=True``) hands the backward batched gradients, which have no memory for the
    kernel to read: the reference's backward runs instead, with the oracle's results."""
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case)
    x = make_inputs(case).x.detach()
    directions = torch.randn(3, *oracle(x)[0].shape, dtype=x.dtype)
    results = []
    for module in (oracle, ours):
        leaf = x.clone().requires_grad_()
        (batched,) = torch.autograd.grad(module(leaf)[0], leaf, directions, is_grads_batched=True)
        jacobian = torch.autograd.functional.jacobian(
            lambda t, m=module: m(t)[1], x[:, :1], vectorize=True
        )
        hessian = torch.autograd.functional.hessian(
            lambda t, m=module: m(t)[1].square().sum(), x[:2, :1], vectorize=True
        )
        results.append((batched, jacobian, hessian))
    for name, a, e in zip(("batched", "jacobian", "hessian"), *results, strict=True):
        assert_close(a, e, torch.float64, name)


class _CheckpointedGRU(GRU):
    """Our GRU under ``torch.utils.checkpoint``: what its forward saves is dropped and
    recomputed in the backward."""

    def forward(self, *args):
        return torch.utils.checkpoint.checkpoint(super().forward, *args, use_reentrant=False)


def _layer_nodes(output: torch.Tensor) -> list:
    """The GRU layers' backward nodes in ``output``'s graph."""
    nodes, stack, seen = [], [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == "GRULayerFunctionBackward":
            nodes.append(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return nodes


@pytest.mark.parametrize("layout", ["dense", "packed"])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_activation_checkpointing_keeps_nothing_and_recomputes(reset_after, layout) -> None:
    """Under a non-reentrant checkpoint (saved-tensor hooks) the layers keep no tensor of their
    own but the T batch sizes, so the checkpoint frees their memory, and the gradients are
    torch's."""
    case = Case(T=6, B=4, I=3, H=8, num_layers=2, bidirectional=True, layout=layout)
    case = case.with_(reset_after=reset_after)
    oracle, ours = make_pair(case)
    checkpointed = _CheckpointedGRU(
        case.I, case.H, case.num_layers, bidirectional=True, reset_after=reset_after,
        backend="cython", dtype=torch.float64,
    )  # fmt: skip
    checkpointed.load_state_dict(ours.state_dict())
    inputs = make_inputs(case)
    expected = outputs_and_grads(oracle, case, inputs.clone_leaves())
    actual = outputs_and_grads(checkpointed, case, inputs.clone_leaves())
    assert actual.keys() == expected.keys()
    for key in expected:
        assert_close(actual[key], expected[key], torch.float64, f"checkpointed {key}")
    out, _ = run(checkpointed, case, inputs.clone_leaves())
    nodes = _layer_nodes(out)
    assert len(nodes) == case.num_layers
    for node in nodes:
        kept = [name for name, value in vars(node).items() if isinstance(value, torch.Tensor)]
        assert kept == ["batch_sizes"], f"tensors kept outside the saved-tensor hooks: {kept}"


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_saved_tensor_hooks_see_the_buffer_and_a_second_backward(reset_after: bool) -> None:
    """Hooks that keep what they are given (the same tensors): the gate buffer goes through
    them, and a second backward through the graph recomputes what the first overwrote."""
    case = Case(T=7, B=3, I=4, H=8, num_layers=2, reset_after=reset_after)
    oracle, ours = make_pair(case)
    expected = outputs_and_grads(oracle, case, make_inputs(case))
    packed = []

    def pack(tensor):
        packed.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        inputs = make_inputs(case)
        out, h_n = run(ours, case, inputs)
    rows = case.T * case.B
    assert max(packed) >= rows * 3 * case.H  # the gates (and the states) of a layer
    generator = torch.Generator().manual_seed(2)  # outputs_and_grads' gradients of the outputs
    g_out = torch.randn(out.shape, generator=generator, dtype=torch.float64)
    g_h = torch.randn(h_n.shape, generator=generator, dtype=torch.float64)
    for _ in range(2):
        (dx,) = torch.autograd.grad((out, h_n), inputs.x, (g_out, g_h), retain_graph=True)
        assert_close(dx, expected["grad[input]"], torch.float64, "input gradient")


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_saved_tensor_hooks_may_give_back_another_layout(reset_after: bool) -> None:
    """An unpack hook may return the same values in another memory layout (transposed
    strides): the kernel's backward, which reads memory, must still see the values."""
    case = Case(T=6, B=3, I=4, H=5, num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case)
    expected = outputs_and_grads(oracle, case, make_inputs(case))

    def transposed_layout(tensor):
        if tensor.dim() < 2:
            return tensor
        return tensor.transpose(0, 1).contiguous().transpose(0, 1)

    with torch.autograd.graph.saved_tensors_hooks(lambda tensor: tensor, transposed_layout):
        actual = outputs_and_grads(ours, case, make_inputs(case))
    for key in expected:
        assert_close(actual[key], expected[key], torch.float64, f"unpacked elsewhere: {key}")


def test_a_hook_that_changes_the_dtype_is_refused() -> None:
    """The kernel reads the saved tensors by address: a float32 layer handed float64 tensors
    back would read past their ends (torch's GRU raises too)."""
    ours = GRU(3, 4, backend="cython")
    x = torch.randn(5, 2, 3, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t.double(), lambda t: t):
        out, _ = ours(x)
    with pytest.raises(RuntimeError, match="hooks gave back a torch.float64 tensor for a"):
        out.sum().backward()


def test_a_hook_that_gives_back_a_buffer_of_another_size_is_refused() -> None:
    """The kernel's backward reads the layout of the gate buffer from its size: a shorter one
    handed back read and wrote past its end (found with AddressSanitizer)."""
    ours = GRU(4, 16, backend="cython")
    x = torch.randn(50, 2, 4, requires_grad=True)

    def halve_the_buffer(tensor):  # the gate buffer: the only saved tensor this large
        return tensor[: tensor.numel() // 2].clone() if tensor.numel() >= 50 * 2 * 16 else tensor

    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, halve_the_buffer):
        out, _ = ours(x)
    with pytest.raises(RuntimeError, match=r"hooks gave back a tensor of shape \[\d+\] for"):
        out.sum().backward()


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("hooked", [False, True], ids=["saved", "hooked"])
def test_batch_sizes_edited_in_place_after_the_forward_raise_like_torch(
    reset_after: bool, hooked: bool
) -> None:
    """The layer keeps the caller's batch sizes for its backward (no copy): edited in place
    since, the kernel read the rows of the wrong sequences, past the buffers' ends when they
    grew (found with AddressSanitizer). Torch raises its saved tensor's version error."""
    from torch.nn.utils.rnn import pack_padded_sequence

    errors = []
    for module in (torch.nn.GRU(4, 16), GRU(4, 16, reset_after=reset_after, backend="cython")):
        x = torch.randn(30, 3, 4, requires_grad=True)
        packed = pack_padded_sequence(x, torch.tensor([30, 10, 2]))
        hooks = torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)
        with hooks if hooked else contextlib.nullcontext():
            out, _ = module(packed)
        loss = out.data.square().sum()
        packed.batch_sizes.fill_(3)
        with pytest.raises(RuntimeError) as error:
            loss.backward()
        errors.append(str(error.value))
    assert "modified by an inplace operation" in errors[0]
    assert re.search(r"batch_sizes.*modified by an inplace operation.* version 1; expected "
                     r"version 0", errors[1])  # fmt: skip


def test_batch_sizes_made_under_inference_mode_train_like_torch() -> None:
    """Inference tensors have no version counter: the layer keeps a copy of such sizes."""
    from torch.nn.utils.rnn import PackedSequence

    with torch.inference_mode():
        batch_sizes = torch.tensor([2, 1])
    oracle = torch.nn.GRU(4, 5)
    ours = GRU(4, 5, backend="cython")
    ours.load_state_dict(oracle.state_dict())
    grads = []
    for module in (oracle, ours):
        data = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
        out, _ = module(PackedSequence(data, batch_sizes, None, None))
        out.data.sum().backward()
        grads.append(data.grad)
    torch.testing.assert_close(grads[1], grads[0])


@pytest.mark.parametrize(
    ("dtype", "cast"),
    [(torch.float64, torch.nn.Module.float), (torch.float32, torch.nn.Module.double)],
)
def test_a_module_cast_between_forward_and_backward_differentiates_the_forward(dtype, cast):
    """``.float()``, ``.double()`` and ``.to()`` set each parameter's ``.data``: the backward
    reads the weights the forward computed with, as torch's GRU does (it read float32 memory
    as float64 and past its end: a crash, or silently wrong gradients)."""
    oracle = torch.nn.GRU(3, 4, dtype=dtype)
    ours = GRU(3, 4, dtype=dtype, backend="cython")
    ours.load_state_dict(oracle.state_dict())
    grads = []
    for module in (oracle, ours):
        x = torch.randn(5, 2, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
        x.requires_grad_()
        out, h_n = module(x)
        cast(module)
        (out.sum() + h_n.sum()).backward()
        grads.append([x.grad, *(p.grad for p in module.parameters())])
    for expected, actual in zip(*grads, strict=True):
        assert actual.dtype == expected.dtype
        assert_close(actual, expected, dtype, "gradient after the module's cast")


def test_a_weight_replaced_after_the_forward_leaves_both_backwards_at_the_forward() -> None:
    """The kernel's backward and the differentiable one (``create_graph=True``) both
    differentiate at the weights the forward computed with, as torch's GRU does."""
    oracle = torch.nn.GRU(3, 4, 2, bidirectional=True, dtype=torch.float64)
    ours = GRU(3, 4, 2, bidirectional=True, dtype=torch.float64, backend="cython")
    ours.load_state_dict(oracle.state_dict())
    results = []
    for module in (oracle, ours):
        x = torch.randn(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        x.requires_grad_()
        out, _ = module(x)
        module.weight_hh_l0.data = torch.zeros_like(module.weight_hh_l0)
        plain = torch.autograd.grad(out.sum(), x, retain_graph=True)[0]
        (differentiable,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        assert differentiable.requires_grad
        results.append((plain, differentiable.detach()))
    for expected, actual in zip(*results, strict=True):
        assert_close(actual, expected, torch.float64, "input gradient after .data was replaced")


def test_a_tensor_replaced_between_forward_and_backward_is_refused_not_read() -> None:
    """A parameter's ``.data`` set to another shape: the gradient of the forward's shape does
    not fit it, a RuntimeError as from torch's GRU (the kernel wrote past the old end). The
    input's ``.data`` replaced: the kernel would read the new one as the forward's."""
    ours = GRU(3, 4, backend="cython")
    x = torch.randn(5, 2, 3, requires_grad=True)
    out, _ = ours(x)
    ours.weight_hh_l0.data = torch.randn(3, 1)
    with pytest.raises(RuntimeError, match="size of tensor"):
        out.sum().backward()
    out, _ = GRU(3, 4, backend="cython")(x)
    x.data = torch.randn(1, 1, 1)
    with pytest.raises(RuntimeError, match=r"the input the forward saved is now .* \[1, 1, 1\]"):
        out.sum().backward()
    ours = GRU(3, 4, backend="cython")
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        out, _ = ours(torch.randn(5, 2, 3))
    ours.weight_hh_l0.data = torch.randn(3, 1)
    with pytest.raises(RuntimeError, match=r"a tensor of shape \[3, 1\] for one of \[12, 4\]"):
        out.sum().backward()


def test_a_lazily_negated_output_gradient() -> None:
    """An output gradient with torch's negative bit holds its values un-negated in memory."""
    case = Case(T=4, B=3, I=2, H=5)
    oracle, ours = make_pair(case)
    x = make_inputs(case).x
    grad = torch.randn(case.T, case.B, case.H, dtype=torch.float64)
    expected = torch.autograd.grad(oracle(x)[0], x, grad)[0]
    actual = torch.autograd.grad(ours(x)[0], x, torch._neg_view(-grad))[0]
    assert_close(actual, expected, torch.float64, "input gradient")


def test_long_sequences_leave_no_cached_batch_sizes() -> None:
    """The batch sizes of a dense call are cached for the small calls that repeat; a cache of
    96 entries of 8 bytes per step would hold gigabytes for long sequences."""
    _traceable._constant.cache_clear()
    _traceable._dense_batch_sizes(1 << 20, 1)
    _traceable._dense_batch_sizes(35, 32)
    assert _traceable._constant.cache_info().currsize == 1


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_concurrent_calls_from_python_threads(reset_after: bool) -> None:
    """The kernel releases the GIL: calls from several threads must not share scratch state."""
    case = Case(T=12, B=6, I=8, H=32, num_layers=2, bidirectional=True, reset_after=reset_after)
    _, ours = make_pair(case)
    xs = [make_inputs(case, seed=s).x for s in range(12)]

    def forward_backward(x):
        out, h_n = ours(x)
        (dx,) = torch.autograd.grad(out.sum() + h_n.sum(), x)
        return out.detach(), dx

    sequential = [forward_backward(x) for x in xs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(forward_backward, xs))
    for (out_s, dx_s), (out_c, dx_c) in zip(sequential, concurrent, strict=True):
        assert_close(out_c, out_s, torch.float64, "output from a thread")
        assert_close(dx_c, dx_s, torch.float64, "input gradient from a thread")


FORK_CASE = Case(T=35, B=32, I=28, H=64, reset_after=True)  # parallel paths on 2 threads


def _training_step(module) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = make_inputs(FORK_CASE, dtype=torch.float32)  # float32: the register-block path
    out, h_n = module(inputs.x, inputs.h0)
    (out.sum() + h_n.sum()).backward()
    return out.detach(), inputs.x.grad


@pytest.mark.skipif(sys.platform != "linux", reason="fork after OpenMP: the Linux case")
def test_runs_in_a_forked_child_on_one_thread() -> None:
    """docs/gru.md: a child forked after the parent ran the kernel on several threads can run it
    once it has set one thread, as DataLoader workers do (GNU OpenMP would hang in a parallel
    region there): the kernel must then enter none."""
    _, ours = make_pair(FORK_CASE, dtype=torch.float32)
    threads = torch.get_num_threads()
    _training_step(ours)  # the parent's OpenMP pool, if it has threads
    try:
        torch.set_num_threads(1)
        expected = _training_step(ours)
    finally:
        torch.set_num_threads(threads)
    context = multiprocessing.get_context("fork")
    with context.Pool(1, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        out, dx = pool.apply_async(_training_step, (ours,)).get(timeout=120)
    assert_close(out, expected[0], torch.float32, "output in a forked child")
    assert_close(dx, expected[1], torch.float32, "input gradient in a forked child")


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_packed_input_ignores_batch_first(reset_after: bool) -> None:
    """With ``batch_first=True``, a ``PackedSequence`` is still taken as it is (like torch)."""
    case = Case(layout="packed", num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle_tm, ours_tm = make_pair(case)
    for module in (oracle_tm, ours_tm):
        module.batch_first = True
    inputs = make_inputs(case)
    for a, e in zip(run(ours_tm, case, inputs), run(oracle_tm, case, inputs), strict=True):
        assert_close(a, e, torch.float64, "packed input, batch_first module")


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_thread_count_changed_between_forward_and_backward(reset_after: bool) -> None:
    case = Case(T=7, B=16, I=8, H=32, num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case)
    inputs = make_inputs(case)
    expected = outputs_and_grads(oracle, case, inputs.clone_leaves())
    threads = torch.get_num_threads()
    leaves = inputs.clone_leaves()
    out, h_n = ours(leaves.x, leaves.h0)
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        (out * expected["output"]).sum().backward()
    finally:
        torch.set_num_threads(threads)
    leaves_oracle = inputs.clone_leaves()
    out_oracle, _ = oracle(leaves_oracle.x, leaves_oracle.h0)
    (out_oracle * expected["output"]).sum().backward()
    assert_close(leaves.x.grad, leaves_oracle.x.grad, torch.float64, "grad[input]")
    for (name, p_oracle), p_ours in zip(oracle.named_parameters(), ours.parameters(), strict=True):
        assert_close(p_ours.grad, p_oracle.grad, torch.float64, f"grad[{name}]")


LOSSES = {
    "out.sum()": lambda out, h_n: out.sum(),  # the output's gradient is one value broadcast
    "out.sum()*3": lambda out, h_n: out.sum() * 3,  # a broadcast 3
    "out.sum()+h_n.sum()": lambda out, h_n: out.sum() + h_n.sum(),
    "h_n only": lambda out, h_n: h_n.square().sum(),  # no gradient reaches the output
    "out only": lambda out, h_n: out.square().sum(),  # none reaches h_n
}


@pytest.mark.parametrize("layout", ["dense", "packed"])
@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_of_an_unused_output_or_a_broadcast_value(loss: str, layout: str) -> None:
    """The kernel reads a broadcast gradient in place and takes an unused output's as None."""
    case = Case(num_layers=2, bidirectional=True, layout=layout)
    oracle, ours = make_pair(case)
    inputs = make_inputs(case)
    grads = {}
    for name, module in (("torch", oracle), ("ours", ours)):
        leaves = inputs.clone_leaves()
        LOSSES[loss](*run(module, case, leaves)).backward()
        grads[name] = [leaves.x.grad, leaves.h0.grad, *(p.grad for p in module.parameters())]
    for actual, expected in zip(grads["ours"], grads["torch"], strict=True):
        assert_close(actual, expected, torch.float64, f"{loss}, {layout}")


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_gradient_reaches_h0_when_only_h0_requires_grad(reset_after: bool) -> None:
    """Frozen weights and an input without gradient: h0 alone still gets its gradient (the
    kernel's Function must be recorded whenever any of its inputs requires grad)."""
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case)
    for module in (oracle, ours):
        module.requires_grad_(False)
    inputs = make_inputs(case)
    inputs.x.requires_grad_(False)
    check_parity(oracle, ours, case, inputs, torch.float64)


@pytest.mark.parametrize("layout", ["dense", "packed"])
def test_output_gradient_with_a_row_stride_wider_than_the_output(layout: str) -> None:
    """The gradient of ``torch.cat([out, extra], -1)`` reaches ``out`` as a narrowed view whose
    rows are farther apart than ``D * H``: the kernel must read it with its real row stride."""
    case = Case(bidirectional=True, layout=layout)
    oracle, ours = make_pair(case)
    inputs = make_inputs(case)
    grads = []
    for module in (oracle, ours):
        leaves = inputs.clone_leaves()
        out, h_n = module(*leaves.module_args(case))
        out = out.data if layout == "packed" else out
        wide = torch.cat([out, torch.ones_like(out)], dim=-1)
        weight = torch.linspace(-1, 1, wide.numel(), dtype=wide.dtype).view_as(wide)
        (wide * weight).sum().backward()
        grads.append([leaves.x.grad, leaves.h0.grad, *(p.grad for p in module.parameters())])
    for expected, actual in zip(*grads, strict=True):
        torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)
