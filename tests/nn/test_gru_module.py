"""``lightning_gru.nn.GRU`` is a ``torch.nn.GRU`` for every purpose but speed.

Parameters, initialisation, ``state_dict`` both ways, copying, pickling, dtype/device moves,
grad modes, ``functional_call``, ``torch.func`` transforms, forward-mode AD, autocast,
non-contiguous inputs and views, and inter-layer dropout.
"""

import contextlib
import copy
import importlib
import io
import pickle
import warnings

import pytest
import torch
from _gru_helpers import RESET_AFTER, Case, assert_close, check_parity, make_inputs, make_pair, run
from torch import Tensor
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.autograd import forward_ad
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torch.utils._pytree import tree_map

from lightning_gru.nn import GRU

CONFIGS = [
    pytest.param(dict(input_size=3, hidden_size=5), id="L1"),
    pytest.param(dict(input_size=3, hidden_size=5, num_layers=3, bidirectional=True), id="L3-bi"),
    pytest.param(dict(input_size=4, hidden_size=2, num_layers=2, bias=False), id="L2-nobias"),
    pytest.param(
        dict(input_size=4, hidden_size=6, num_layers=2, batch_first=True, dropout=0.25),
        id="bf-drop",
    ),
]


def test_is_a_torch_gru() -> None:
    m = GRU(3, 5)
    assert isinstance(m, torch.nn.GRU)
    assert isinstance(m, torch.nn.RNNBase)
    assert m.reset_after is True
    assert m.backend == "auto"


def test_constructor_keywords_and_defaults() -> None:
    m = GRU(
        input_size=3,
        hidden_size=4,
        num_layers=2,
        bias=False,
        batch_first=True,
        dropout=0.5,
        bidirectional=True,
        device="cpu",
        dtype=torch.float64,
        reset_after=False,
        backend="cython",
    )
    assert (m.input_size, m.hidden_size, m.num_layers) == (3, 4, 2)
    assert (m.bias, m.batch_first, m.dropout, m.bidirectional) == (False, True, 0.5, True)
    assert (m.reset_after, m.backend) == (False, "cython")
    assert all(p.dtype == torch.float64 for p in m.parameters())
    with pytest.raises(TypeError):
        GRU(3, 4, 1, True, False, 0.0, False, None, None, False)  # reset_after is keyword-only
    positional = GRU(3, 4, 2, False, True, 0.5, True, "cpu", torch.float64)
    assert str(positional) == str(m).replace(", reset_after=False, backend='cython'", "")


def test_signature_names_every_argument() -> None:
    """help() and IDEs show the arguments, not ``*args, **kwargs``; torch's order."""
    import inspect

    assert list(inspect.signature(GRU).parameters) == [
        "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
        "bidirectional", "device", "dtype", "reset_after", "backend",
    ]  # fmt: skip


@pytest.mark.parametrize("config", CONFIGS)
def test_same_parameters_and_initialisation_as_torch(config: dict) -> None:
    torch.manual_seed(0)
    expected = torch.nn.GRU(**config)
    torch.manual_seed(0)
    ours = GRU(**config, reset_after=False, backend="cython")
    expected_params = dict(expected.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert list(ours_params) == list(expected_params)
    for name, p in expected_params.items():
        assert torch.equal(ours_params[name], p), name
    assert ours._flat_weights_names == expected._flat_weights_names
    assert [list(w) for w in ours._all_weights] == [list(w) for w in expected._all_weights]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("direction", ["torch_to_ours", "ours_to_torch"])
def test_state_dict_round_trip(config: dict, direction: str) -> None:
    torch_gru, ours = torch.nn.GRU(**config), GRU(**config, backend="cython")
    source, target = (torch_gru, ours) if direction == "torch_to_ours" else (ours, torch_gru)
    state = source.state_dict()
    result = target.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in target.state_dict().items():
        assert torch.equal(value, state[key]), key
    # and the model computes with the loaded weights
    torch_gru.eval(), ours.eval()
    batch_first = config.get("batch_first", False)
    x = torch.randn((2, 6, config["input_size"]) if batch_first else (6, 2, config["input_size"]))
    for a, b in zip(ours(x), torch_gru(x), strict=True):
        assert_close(a, b, torch.float32, direction)


def test_state_dict_through_a_file() -> None:
    ours = GRU(3, 4, num_layers=2, bidirectional=True, reset_after=False)
    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    torch_gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    torch_gru.load_state_dict(state)
    clone = GRU(3, 4, num_layers=2, bidirectional=True, reset_after=False)
    clone.load_state_dict(torch_gru.state_dict())
    x = torch.randn(5, 2, 3)
    for a, b in zip(clone(x), ours(x), strict=True):
        assert torch.equal(a, b)


def _same_forward(a: torch.nn.GRU, b: torch.nn.GRU, dtype=torch.float32) -> None:
    x = torch.randn(5, 3, a.input_size, dtype=dtype)
    if a.batch_first:
        x = x.transpose(0, 1)
    a.eval(), b.eval()
    for out_a, out_b in zip(a(x), b(x), strict=True):
        assert torch.equal(out_a, out_b)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_deepcopy(reset_after: bool) -> None:
    ours = GRU(3, 4, num_layers=2, bidirectional=True, reset_after=reset_after, backend="cython")
    clone = copy.deepcopy(ours)
    assert (clone.reset_after, clone.backend) == (reset_after, "cython")
    _same_forward(ours, clone)
    with torch.no_grad():
        clone.weight_hh_l0.add_(1.0)
    assert not torch.equal(clone.weight_hh_l0, ours.weight_hh_l0)  # no shared storage


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_pickle(reset_after: bool) -> None:
    ours = GRU(3, 4, num_layers=2, reset_after=reset_after, backend="cython")
    clone = pickle.loads(pickle.dumps(ours))
    assert isinstance(clone, GRU)
    assert (clone.reset_after, clone.backend) == (reset_after, "cython")
    _same_forward(ours, clone)


def test_torch_save_whole_module() -> None:
    ours = GRU(3, 4, reset_after=False)
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    buffer.seek(0)
    clone = torch.load(buffer, weights_only=False)
    assert clone.reset_after is False
    _same_forward(ours, clone)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("convert", ["double", "to_float64"])
def test_double(reset_after: bool, convert: str) -> None:
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case, torch.float32)
    oracle.double()
    ours = ours.double() if convert == "double" else ours.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in ours.parameters())
    assert all(w.dtype == torch.float64 for w in ours._flat_weights)
    check_parity(oracle, ours, case, make_inputs(case, torch.float64), torch.float64)


def test_float_after_double() -> None:
    case = Case(num_layers=2)
    oracle, ours = make_pair(case, torch.float64)
    oracle.float(), ours.float()
    check_parity(oracle, ours, case, make_inputs(case, torch.float32), torch.float32)


GRAD_MODES = [
    pytest.param(torch.no_grad, id="no_grad"),
    pytest.param(torch.inference_mode, id="inference_mode"),
]


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("mode", GRAD_MODES)
@pytest.mark.parametrize("layout", ["dense", "packed"])
def test_grad_modes(reset_after: bool, mode, layout: str) -> None:
    case = Case(num_layers=2, bidirectional=True, layout=layout, reset_after=reset_after)
    oracle, ours = make_pair(case)
    inputs = make_inputs(case)
    with mode():
        expected = run(oracle, case, inputs)
        actual = run(ours, case, inputs)
    for a, e, what in zip(actual, expected, ("output", "h_n"), strict=True):
        assert not a.requires_grad and a.grad_fn is None, what
        assert a.is_inference() == e.is_inference(), what
        assert_close(a, e, torch.float64, what)


@pytest.mark.parametrize("mode", [*GRAD_MODES, pytest.param(contextlib.nullcontext, id="frozen")])
def test_calls_that_record_no_graph_skip_the_autograd_function(mode, monkeypatch) -> None:
    """Inference, and a call where nothing requires a gradient, run the kernel directly: the
    Function's apply costs ~15 us a call, a fifth of a small call (sine sizes, T = 1 steps)."""
    from lightning_gru.functional._cython import GRULayerFunction

    case = Case(num_layers=2)
    oracle, ours = make_pair(case)
    inputs = make_inputs(case, requires_grad=mode is not contextlib.nullcontext)
    if mode is contextlib.nullcontext:
        ours.requires_grad_(False)
    expected = run(oracle, case, inputs)

    def refuse(*args):
        raise AssertionError("GRULayerFunction.apply called for a call that records no graph")

    monkeypatch.setattr(GRULayerFunction, "apply", refuse)
    with mode():
        actual = run(ours, case, inputs)
    for a, e, what in zip(actual, expected, ("output", "h_n"), strict=True):
        assert not a.requires_grad, what
        assert_close(a, e, torch.float64, what)


def test_functional_call_uses_the_given_parameters() -> None:
    case = Case(num_layers=2, bidirectional=True)
    oracle, ours = make_pair(case)
    replacement = {name: torch.randn_like(p) for name, p in ours.named_parameters()}
    oracle.load_state_dict(replacement)
    inputs = make_inputs(case, requires_grad=False)
    expected = oracle(inputs.x, inputs.h0)
    actual = functional_call(ours, replacement, (inputs.x, inputs.h0))
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e, torch.float64, "functional_call")


def test_reassigned_parameter_is_used() -> None:
    case = Case()
    oracle, ours = make_pair(case)
    w = torch.randn_like(ours.weight_hh_l0)
    ours.weight_hh_l0 = torch.nn.Parameter(w.clone())
    oracle.weight_hh_l0 = torch.nn.Parameter(w.clone())
    check_parity(oracle, ours, case, make_inputs(case), torch.float64)


def test_parameter_replaced_by_a_plain_tensor_is_used() -> None:
    case = Case()
    oracle, ours = make_pair(case)
    w = torch.randn_like(ours.weight_hh_l0)
    for module in (oracle, ours):
        del module.weight_hh_l0
        module.weight_hh_l0 = w.clone()  # an attribute, no longer a registered parameter
    inputs = make_inputs(case, requires_grad=False)
    for a, e in zip(ours(inputs.x, inputs.h0), oracle(inputs.x, inputs.h0), strict=True):
        assert_close(a, e, torch.float64, "plain tensor weight")


def test_flatten_parameters_is_harmless() -> None:
    case = Case(num_layers=2)
    oracle, ours = make_pair(case)
    ours.flatten_parameters()
    check_parity(oracle, ours, case, make_inputs(case), torch.float64)


def test_repr_shows_reset_after() -> None:
    assert "reset_after=False" in repr(GRU(3, 4, reset_after=False))


# --- non-contiguous inputs and views --------------------------------------------------------


def _views(T: int, B: int, I: int) -> dict[str, torch.Tensor]:  # noqa: E741
    """Time-major ``(T, B, I)`` tensors that are not plain contiguous ones."""
    return {
        "transposed": torch.randn(B, T, I, dtype=torch.float64).transpose(0, 1),
        "strided-features": torch.randn(T, B, 2 * I, dtype=torch.float64)[..., ::2],
        "sliced-time": torch.randn(2 * T, B, I, dtype=torch.float64)[1::2],
        "sliced-batch": torch.randn(T, B + 3, I, dtype=torch.float64)[:, 2 : 2 + B],
        "expanded-batch": torch.randn(T, 1, I, dtype=torch.float64).expand(T, B, I),
        "permuted": torch.randn(I, T, B, dtype=torch.float64).permute(1, 2, 0),
    }


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("view", list(_views(2, 2, 2)))
def test_non_contiguous_input(view: str, reset_after: bool) -> None:
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case)
    torch.manual_seed(5)
    x = _views(case.T, case.B, case.I)[view]
    h0 = torch.randn(case.B, 4, case.H, dtype=torch.float64).transpose(0, 1)  # non-contiguous
    for module in (oracle, ours):
        module.zero_grad()
    x_oracle, x_ours = x.detach().requires_grad_(), x.detach().requires_grad_()
    expected = oracle(x_oracle, h0)
    actual = ours(x_ours, h0)
    for a, e, what in zip(actual, expected, ("output", "h_n"), strict=True):
        assert_close(a, e, torch.float64, f"{view} {what}")
    (expected[0].sum() + expected[1].square().sum()).backward()
    (actual[0].sum() + actual[1].square().sum()).backward()
    assert_close(x_ours.grad, x_oracle.grad, torch.float64, f"{view} grad[input]")
    for (name, p_oracle), p_ours in zip(oracle.named_parameters(), ours.parameters(), strict=True):
        assert_close(p_ours.grad, p_oracle.grad, torch.float64, f"{view} grad[{name}]")


def test_non_contiguous_batch_first_input() -> None:
    case = Case(layout="batch_first", num_layers=2)
    oracle, ours = make_pair(case)
    x = torch.randn(case.T, case.B, case.I, dtype=torch.float64).transpose(0, 1)  # (B, T, I) view
    for a, e in zip(ours(x), oracle(x), strict=True):
        assert_close(a, e, torch.float64, "batch_first transposed view")


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_non_contiguous_weights(reset_after: bool) -> None:
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case)
    for module in (oracle, ours):
        for name in ("weight_ih_l0", "weight_hh_l0_reverse", "weight_hh_l1"):
            w = getattr(module, name).detach()
            transposed = w.t().contiguous().t()  # same values, column-major storage
            assert not transposed.is_contiguous()
            setattr(module, name, torch.nn.Parameter(transposed))
    check_parity(oracle, ours, case, make_inputs(case), torch.float64)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_lazily_negated_tensors(reset_after: bool) -> None:
    """A tensor with torch's negative bit holds its values negated in memory until torch reads
    it (``z.conj().imag`` of a one-element ``z``; ``torch._neg_view`` makes any): the kernel,
    which reads memory, must see the values."""
    case = Case(num_layers=2, reset_after=reset_after)
    oracle, ours = make_pair(case)
    weight = ours.weight_hh_l1.detach()
    ours.weight_hh_l1 = torch.nn.Parameter(torch._neg_view(-weight))
    assert ours.weight_hh_l1.is_neg() and torch.equal(ours.weight_hh_l1, weight)
    inputs = make_inputs(case)
    x, h0 = inputs.x.detach(), inputs.h0.detach()
    negated_x, negated_h0 = torch._neg_view(-x), torch._neg_view(-h0)
    for a, e in zip(ours(negated_x, negated_h0), oracle(x, h0), strict=True):
        assert_close(a, e, torch.float64, "negated views")
    one = torch.complex(torch.zeros(1, 1, 1), torch.tensor([[[0.9]]])).conj().imag  # -0.9
    assert one.is_neg() and one.is_contiguous()
    single_ours, single_torch = GRU(1, 1), torch.nn.GRU(1, 1)
    single_torch.load_state_dict(single_ours.state_dict())
    for a, e in zip(single_ours(one, one), single_torch(one, one), strict=True):
        assert_close(a, e, torch.float32, "a one-element negated view")


# --- dropout ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_dropout_in_eval_mode_is_identity(reset_after: bool) -> None:
    case = Case(num_layers=3, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case, dropout=0.5)
    oracle.dropout = 0.0
    oracle.eval(), ours.eval()
    check_parity(oracle, ours, case, make_inputs(case), torch.float64)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_dropout_single_layer_is_identity_in_training(reset_after: bool) -> None:
    """Dropout acts between layers only: with one layer, training output equals eval output."""
    case = Case(num_layers=1, reset_after=reset_after)
    with pytest.warns(UserWarning, match="dropout"):
        oracle, ours = make_pair(case, dropout=0.5)
    check_parity(oracle, ours, case, make_inputs(case), torch.float64)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("layout", ["dense", "packed"])
def test_dropout_in_training(reset_after: bool, layout: str) -> None:
    case = Case(T=6, B=5, H=16, num_layers=3, bidirectional=True, layout=layout)
    case = case.with_(reset_after=reset_after)
    _, ours = make_pair(case, dropout=0.5)
    inputs = make_inputs(case)

    ours.eval()
    eval_out, eval_h = run(ours, case, inputs)
    ours.train()
    torch.manual_seed(7)
    out, h_n = run(ours, case, inputs)
    torch.manual_seed(7)
    again, _ = run(ours, case, inputs)
    assert not torch.allclose(out, eval_out)  # dropout is applied
    assert torch.equal(out, again)  # and follows torch's RNG
    # the first layer does not see dropout: its final states are those of eval mode
    D = case.D
    torch.testing.assert_close(h_n[:D], eval_h[:D], rtol=1e-12, atol=1e-12)
    (out.square().sum() + h_n.sum()).backward()
    assert torch.isfinite(inputs.x.grad).all()
    for name, p in ours.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_dropout_one_between_layers_matches_torch(reset_after: bool) -> None:
    """dropout=1.0 is a valid probability (torch.nn.GRU accepts it): every output of the layers
    below the last is zeroed, so the result is deterministic and equals the oracle's."""
    case = Case(num_layers=2, reset_after=reset_after)
    oracle, ours = make_pair(case, dropout=1.0)
    check_parity(oracle, ours, case, make_inputs(case), torch.float64)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_dropout_between_layers_keeps_the_lower_layers_in_the_graph(reset_after: bool) -> None:
    """Through the dropout between layers, the output's gradient reaches the first layer."""
    case = Case(num_layers=2, reset_after=reset_after)
    _, ours = make_pair(case, dropout=0.5)
    torch.manual_seed(0)
    out, _ = ours(make_inputs(case).x)
    out.sum().backward()
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        grad = getattr(ours, name).grad
        assert grad is not None and grad.abs().sum() > 0, name


# --- parametrizations and torch.compile ------------------------------------------------------


PARAMETRIZATIONS = [
    pytest.param(torch.nn.utils.parametrizations.weight_norm, id="weight_norm"),
    pytest.param(torch.nn.utils.parametrizations.spectral_norm, id="spectral_norm"),
]


@pytest.mark.parametrize("reset_after", RESET_AFTER)
@pytest.mark.parametrize("parametrize", PARAMETRIZATIONS)
def test_parametrized_weights(parametrize, reset_after: bool) -> None:
    """Weights computed by a parametrization (weight drop, weight/spectral norm) are honoured."""
    case = Case(num_layers=2, reset_after=reset_after)
    oracle, ours = make_pair(case)
    for module in (oracle, ours):
        torch.manual_seed(1)  # spectral_norm draws its power-iteration vectors
        parametrize(module, "weight_hh_l0")
    for step in range(2):  # spectral_norm updates its vectors on every training forward
        torch.manual_seed(step)
        check_parity(oracle, ours, case, make_inputs(case, seed=step), torch.float64)


@pytest.mark.filterwarnings("ignore")
def test_torch_compile_eager_backend() -> None:
    case = Case(num_layers=2, bidirectional=True)
    oracle, ours = make_pair(case)
    compiled = torch.compile(ours, backend="eager")
    check_parity(oracle, compiled, case, make_inputs(case), torch.float64)


@pytest.mark.filterwarnings("ignore")
def test_torch_compile_runs_the_kernel_at_every_batch_size(monkeypatch) -> None:
    """Dynamo traces inside a functorch interpreter, which is no ``torch.func`` transform: the
    call still reaches the kernel, out of the graph, also once a new batch size has made
    Dynamo recompile with symbolic sizes."""
    functional = importlib.import_module("lightning_gru.functional.gru")
    calls = []
    kernel = functional.cython_gru
    monkeypatch.setattr(functional, "cython_gru", lambda *args: calls.append(1) or kernel(*args))
    case = Case(num_layers=2)
    oracle, ours = make_pair(case, backend="auto")
    compiled = torch.compile(ours, backend="eager")
    for B in (2, 4, 6):
        check_parity(oracle, compiled, case.with_(B=B), make_inputs(case.with_(B=B)), torch.float64)
    assert len(calls) == 3


def test_torch_compile_without_h0_does_not_warn() -> None:
    """The module's caches (dense batch sizes, default initial state) are bypassed under Dynamo,
    which would otherwise trace through ``lru_cache`` with a UserWarning."""
    case = Case(num_layers=2, with_h0=False)
    oracle, ours = make_pair(case)
    compiled = torch.compile(ours, backend="eager")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        check_parity(oracle, compiled, case, make_inputs(case), torch.float64)
    assert not [w for w in caught if issubclass(w.category, UserWarning)], caught


def test_default_initial_state_is_not_shared_state() -> None:
    """Small default states are one cached zero tensor: a call in inference mode must not leave
    it unusable for training, and nothing a caller does to the results may reach it."""
    torch.manual_seed(0)
    ours = GRU(3, 5, backend="cython")
    reference = torch.nn.GRU(3, 5)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(4, 2, 3)
    with torch.inference_mode():
        ours(x)
    out, h_n = ours(x)
    (out.square().sum() + h_n.sum()).backward()
    out.detach().add_(1.0)
    h_n.detach().mul_(3.0)
    expected = reference(x)
    for a, e, what in zip(ours(x), expected, ("output", "h_n"), strict=True):
        assert_close(a, e, torch.float32, f"second call, {what}")
    assert_close(ours(x[:, :1])[1], reference(x[:, :1])[1], torch.float32, "other batch size")


def test_functional_call_with_parameters_of_another_dtype() -> None:
    """torch's input check reads ``_flat_weights``, which ``functional_call`` leaves as it was."""
    case = Case(num_layers=2, bidirectional=True)
    oracle, ours = make_pair(case, torch.float32)
    replacement = {name: p.detach().double() for name, p in ours.named_parameters()}
    inputs = make_inputs(case, torch.float64, requires_grad=False)
    expected = functional_call(oracle, replacement, (inputs.x, inputs.h0))
    actual = functional_call(ours, replacement, (inputs.x, inputs.h0))
    for a, e, what in zip(actual, expected, ("output", "h_n"), strict=True):
        assert a.dtype == torch.float64, what
        assert_close(a, e, torch.float64, what)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_torch_func_grad_like_torch(reset_after: bool) -> None:
    """``torch.func`` transforms run torch's GRU (the kernel's Function has no rules for them)."""
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case, backend="auto")
    inputs = make_inputs(case, requires_grad=False)
    params = {name: p.detach() for name, p in ours.named_parameters()}

    def gradients(module: torch.nn.Module) -> dict:
        def loss(p: dict) -> torch.Tensor:
            out, h_n = functional_call(module, p, (inputs.x, inputs.h0))
            return out.square().sum() + h_n.sum()

        return torch.func.grad(loss)(params)

    expected, actual = gradients(oracle), gradients(ours)
    for name in params:
        assert_close(actual[name], expected[name], torch.float64, name)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("backend", ["auto", "cython"])
def test_torch_func_grad_of_a_compiled_function_like_torch(backend: str) -> None:
    """A transform around a compiled function: Dynamo traces without it, and the kernel's call,
    run eagerly out of the graph, finds it there: torch's GRU runs, as outside
    ``torch.compile`` (a forced ``"cython"`` refuses it); the kernel could not read the
    transform's tensors."""
    torch.manual_seed(0)
    ours = GRU(3, 4, num_layers=2, bidirectional=True, backend=backend)
    reference = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(5, 2, 3)
    torch._dynamo.reset()
    compiled = torch.compile(lambda u: ours(u)[0].square().sum(), backend="eager")
    if backend == "cython":
        with pytest.raises(ValueError, match="cannot run under a torch.func transform"):
            torch.func.grad(compiled)(x)
        return
    expected = torch.func.grad(lambda u: reference(u)[0].square().sum())(x)
    assert_close(torch.func.grad(compiled)(x), expected, torch.float32, "input gradient")


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_forward_mode_ad_like_torch(reset_after: bool) -> None:
    case = Case(num_layers=2, bidirectional=True, reset_after=reset_after)
    oracle, ours = make_pair(case, backend="auto")
    inputs = make_inputs(case, requires_grad=False)
    tangent = torch.randn_like(inputs.x)

    def jvp(module: torch.nn.Module) -> list[torch.Tensor]:
        with forward_ad.dual_level():
            outputs = module(forward_ad.make_dual(inputs.x, tangent), inputs.h0)
            return [forward_ad.unpack_dual(t).tangent for t in outputs]

    for a, e, what in zip(jvp(ours), jvp(oracle), ("output", "h_n"), strict=True):
        assert_close(a, e, torch.float64, what)


@pytest.mark.parametrize("transform", ["grad", "vjp", "jvp"])
def test_kernel_calls_after_a_torch_func_transform(transform: str) -> None:
    """A default state built under a transform is not cached: its functorch wrapper, which has
    no storage once the transform ends, reached the kernel of later calls of the same shape."""
    ours = GRU(3, 4)
    x = torch.randn(5, 2, 3)
    params = {name: p.detach() for name, p in ours.named_parameters()}
    if transform == "grad":
        torch.func.grad(lambda p: functional_call(ours, p, (x,))[0].sum())(params)
    elif transform == "vjp":
        torch.func.vjp(lambda x: ours(x)[0], x)
    else:
        torch.func.jvp(lambda x: ours(x)[0], (x,), (torch.randn_like(x),))
    expected = torch.nn.GRU(3, 4)
    expected.load_state_dict(ours.state_dict())
    with torch.no_grad():
        assert_close(ours(x)[0], expected(x)[0], torch.float32, "no_grad output")
    with torch.inference_mode():
        assert_close(ours(x)[0], expected(x)[0], torch.float32, "inference output")


def _kept_from_inside(transform: str, tensor: Tensor) -> Tensor:
    """What a function run under ``transform`` saw of ``tensor``, kept after it returned: a
    wrapper (two for ``"grad-of-grad"``) of a finished transform, or a functional tensor."""
    kept = []

    def keep(t: Tensor) -> Tensor:
        kept.append(t)
        return t.sum()

    if transform == "grad":
        torch.func.grad(keep)(tensor)
    elif transform == "grad-of-grad":
        torch.func.grad(lambda t: torch.func.grad(keep)(t).sum())(tensor)
    else:
        torch.func.functionalize(keep)(tensor)
    assert torch._C._functorch.is_functorch_wrapped_tensor(kept[0])  # the premise
    return kept[0]


@pytest.mark.parametrize("escaped", ["input", "h0", "weight_hh_l0", "weight_hh_l1", "nested-input"])
@pytest.mark.parametrize("grad_mode", ["train", "no_grad"])
def test_tensors_that_escaped_a_torch_func_transform(escaped: str, grad_mode: str) -> None:
    """A tensor kept from inside a finished ``torch.func`` transform is a wrapper without memory
    of its own: torch's GRU reads through it, so must the kernel (the forward of a training call
    skips ``Function.apply``'s Python wrapper, which unwraps such tensors), before any layer
    runs: a second layer's weight must not cost the first layer's dropout a second draw."""
    torch.manual_seed(0)
    ours = GRU(3, 4, num_layers=2, dropout=0.5, backend="cython")
    expected = torch.nn.GRU(3, 4, num_layers=2, dropout=0.5)
    expected.load_state_dict(ours.state_dict())
    x, h0 = torch.randn(5, 2, 3), torch.randn(2, 2, 4)
    if escaped.startswith("weight"):
        kept = _kept_from_inside("grad", getattr(ours, escaped).detach().clone())
        delattr(ours, escaped)  # a plain tensor in its place, as functional_call puts it
        setattr(ours, escaped, kept)
        args = (x, h0)
    else:
        transform = "grad-of-grad" if escaped == "nested-input" else "grad"
        kept = _kept_from_inside(transform, h0 if escaped == "h0" else x)
        args = (x, kept) if escaped == "h0" else (kept, h0)
    results = []
    for module, inputs in ((ours, args), (expected, (x, h0))):
        torch.manual_seed(1)  # the same dropout masks
        with contextlib.nullcontext() if grad_mode == "train" else torch.no_grad():
            output, h_n = module(*inputs)
        results.append((output, h_n, torch.rand(1)))  # the generator used as much
        if grad_mode == "train":
            output.sum().backward()
    for a, e, what in zip(*results, ("output", "h_n", "next draw"), strict=True):
        assert_close(a, e, torch.float32, what)
    if grad_mode == "train":
        assert_close(ours.weight_ih_l0.grad, expected.weight_ih_l0.grad, torch.float32, "grad")


@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
@pytest.mark.parametrize("backend", ["auto", "cython"])
def test_a_functional_tensor_is_refused_not_read(backend: str, packed: bool) -> None:
    """A tensor kept from inside ``torch.func.functionalize`` has no memory (its address, and
    that of a slice of it, reads 0): a RuntimeError, as torch's GRU raises, where the kernel
    would crash the interpreter."""
    x = _kept_from_inside("functionalize", torch.randn(5, 2, 3))
    if packed:  # the kernel's driver slices the data to the rows of the batch sizes
        x = PackedSequence(x.reshape(10, 3), torch.tensor([2, 2, 2, 2, 2]))
    with pytest.raises(RuntimeError, match="would read has no memory of its own"):
        GRU(3, 4, backend=backend)(x)


def test_a_functional_gradient_is_refused_not_read() -> None:
    """The same for the gradient handed to the kernel's backward."""
    grad = _kept_from_inside("functionalize", torch.randn(5, 2, 4)).reshape(5, 2, 4)
    output, _ = GRU(3, 4, backend="cython")(torch.randn(5, 2, 3))
    with pytest.raises(RuntimeError, match="the output's gradient has no memory of its own"):
        output.backward(grad)


def test_forced_cython_backend_refuses_transforms() -> None:
    ours = GRU(3, 4, backend="cython")
    x = torch.randn(5, 2, 3)
    params = {name: p.detach() for name, p in ours.named_parameters()}
    with pytest.raises(ValueError, match="torch.func transform"):
        torch.func.grad(lambda p: functional_call(ours, p, (x,))[0].sum())(params)
    with forward_ad.dual_level(), pytest.raises(ValueError, match="forward-mode AD"):
        ours(forward_ad.make_dual(x, torch.randn_like(x)))


def test_autocast_runs_torch_gru_in_its_lower_precision() -> None:
    """Under CPU autocast ``backend="auto"`` runs torch's GRU, as autocast would; a forced
    ``"cython"`` runs the kernel in the input's dtype."""
    torch.manual_seed(0)
    ours, reference = GRU(3, 8, num_layers=2), torch.nn.GRU(3, 8, num_layers=2)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(5, 2, 3)
    full_precision = reference(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, actual = reference(x), ours(x)
        ours.backend = "cython"
        forced = ours(x)
    for a, e, f in zip(actual, expected, full_precision, strict=True):
        torch.testing.assert_close(a, e)
        assert (a - f).abs().max() > 1e-4  # bfloat16 products: autocast took effect
    for a, f in zip(forced, full_precision, strict=True):
        assert_close(a, f, torch.float32, "forced cython under autocast")


@pytest.mark.parametrize("state_dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("input_dtype", [torch.bfloat16, torch.float32])
def test_autocast_takes_a_state_in_another_dtype_like_torch(input_dtype, state_dtype) -> None:
    """Under autocast torch's GRU takes an input and a state of different dtypes (autocast casts
    both), as a roll-out under ``precision="bf16-mixed"`` feeds it a bfloat16 prediction and a
    float32 state; so does ours, with either backend (the kernel in the input's dtype)."""
    torch.manual_seed(0)
    ours, reference = GRU(3, 8), torch.nn.GRU(3, 8)
    reference.load_state_dict(ours.state_dict())
    x, h0 = torch.randn(5, 2, 3, dtype=input_dtype), torch.randn(1, 2, 8, dtype=state_dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, actual = reference(x, h0), ours(x, h0)
        if input_dtype is torch.float32:
            ours.backend = "cython"
            forced = ours(x, h0)
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == e.dtype
        torch.testing.assert_close(a, e)
    if input_dtype is torch.float32:
        full_precision = reference(x, h0.float())
        for f, e in zip(forced, full_precision, strict=True):
            assert_close(f, e, torch.float32, "forced cython under autocast")


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_torch_jit_trace_records_torch_gru() -> None:
    """A trace keeps tensor ops, not Python calls: it records torch's GRU, which then runs at
    any shape and trains."""
    torch.manual_seed(0)
    ours, reference = GRU(4, 5, num_layers=2), torch.nn.GRU(4, 5, num_layers=2)
    reference.load_state_dict(ours.state_dict())
    traced = torch.jit.trace(ours, (torch.randn(3, 2, 4),))
    x = torch.randn(6, 3, 4)
    for a, e in zip(traced(x), reference(x), strict=True):
        assert_close(a, e, torch.float32, "traced")
    traced(x)[0].sum().backward()
    reference(x)[0].sum().backward()
    assert_close(ours.weight_hh_l1.grad, reference.weight_hh_l1.grad, torch.float32, "grad")
    with pytest.raises(ValueError, match="torch.jit.trace"):
        torch.jit.trace(GRU(4, 5, backend="cython"), (torch.randn(3, 2, 4),))


class _OutputAndState(torch.nn.Module):
    """A model around a GRU, as torch.export takes one."""

    def __init__(self, gru: torch.nn.GRU) -> None:
        super().__init__()
        self.gru = gru

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.gru(x, h0)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_torch_export_records_torch_operations(reset_after: bool, strict: bool) -> None:
    """An exported program holds tensor ops only (fake tensors have no memory for the kernel,
    and an export allows no graph break): it records torch's GRU, or the reference's ops for
    ``reset_after=False``, and computes what the module does."""
    torch.manual_seed(0)
    ours = GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True, reset_after=reset_after)
    x, h0 = torch.randn(2, 5, 3), torch.randn(4, 2, 4)
    program = torch.export.export(_OutputAndState(ours), (x, h0), strict=strict)
    for a, e in zip(program.module()(x, h0), ours(x, h0), strict=True):
        assert_close(a, e, torch.float32, "exported")
    ours.backend = "cython"
    # (a strict export reports the ValueError inside Dynamo's own RuntimeError)
    with pytest.raises(RuntimeError if strict else ValueError, match="cannot run under torch.exp"):
        torch.export.export(_OutputAndState(ours), (x, h0), strict=strict)


def test_a_default_device_context_leaves_cpu_inputs_on_the_kernel() -> None:
    """``with torch.device("meta")`` changes where new tensors go by default, not where the
    inputs are: like torch's GRU, the result is on the CPU, and no cached tensor keeps meta."""
    torch.manual_seed(0)
    ours, reference = GRU(8, 16), torch.nn.GRU(8, 16)
    reference.load_state_dict(ours.state_dict())
    x, h0 = torch.randn(5, 3, 8), torch.zeros(1, 3, 16)
    with torch.device("meta"):
        results = [ours(x, h0), ours(x)]
    for output, h_n in [*results, ours(x)]:
        assert output.device.type == h_n.device.type == "cpu"
        assert_close(output, reference(x)[0], torch.float32, "under a device context")


def test_dispatch_modes_and_fake_tensors_run_torch_gru() -> None:
    """The kernel reads memory that fake tensors do not have, and dispatch modes see only
    torch's operations: under ``auto`` these run torch's GRU (FlopCounterMode then counts its
    flops), a forced ``cython`` refuses them, and nothing fake stays in a cache."""
    import threading

    from torch.utils.flop_counter import FlopCounterMode

    ours = GRU(8, 16)
    x = torch.randn(5, 3, 8)

    def fake_call() -> None:
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            output, _ = ours(mode.from_tensor(x))
            assert type(output).__name__ == "FakeTensor" and output.shape == (5, 3, 16)
            with pytest.raises(ValueError, match="TorchDispatchMode"):
                GRU(8, 16, backend="cython")(mode.from_tensor(x))

    thread = threading.Thread(target=fake_call)
    thread.start()
    thread.join()
    output, _ = ours(x)  # the default state and batch sizes of this shape are real tensors
    assert type(output) is torch.Tensor and torch.isfinite(output).all()
    with FlopCounterMode(display=False) as counter:
        ours(x)
    assert counter.get_total_flops() > 0


class _StoragelessTensor(torch.Tensor):
    """A tensor subclass without memory of its own, as ``DTensor``: its values live in ``elem``
    and every operation runs on those."""

    @staticmethod
    def __new__(cls, elem: Tensor) -> "_StoragelessTensor":
        return Tensor._make_wrapper_subclass(cls, elem.shape, dtype=elem.dtype, device=elem.device)

    def __init__(self, elem: Tensor) -> None:
        self.elem = elem

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        def unwrap(t):
            return t.elem if isinstance(t, _StoragelessTensor) else t

        out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs or {}))
        return tree_map(lambda t: cls(t) if isinstance(t, Tensor) else t, out)


@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_a_tensor_subclass_without_storage_runs_torch_operations(reset_after: bool) -> None:
    """The kernel would read the address of memory that such a tensor does not have (a
    segmentation fault): ``auto`` runs torch's operations on it, which it dispatches."""
    ours = GRU(3, 4, num_layers=2, reset_after=reset_after)
    x = torch.randn(5, 2, 3)
    output, h_n = ours(_StoragelessTensor(x))
    assert type(output) is _StoragelessTensor
    expected = ours(x)
    assert_close(output.elem, expected[0], torch.float32, "output")
    assert_close(h_n.elem, expected[1], torch.float32, "h_n")


@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
@pytest.mark.parametrize("reset_after", RESET_AFTER)
def test_dropout_between_layers_is_the_same_on_both_backends(reset_after, packed) -> None:
    """With one seed, the kernel's layers and torch's (``backend="torch"``: torch's GRU, or the
    reference for Cho's cell) drop the same outputs: both are in training mode. (The reference
    runs a packed input padded, so there its dropout draws other numbers: applied, not equal.)"""
    torch.manual_seed(0)
    on_torch = GRU(3, 8, num_layers=3, dropout=0.5, bidirectional=True, reset_after=reset_after,
                   backend="torch")  # fmt: skip
    on_kernel = GRU(3, 8, num_layers=3, dropout=0.5, bidirectional=True,
                    reset_after=reset_after, backend="cython")  # fmt: skip
    on_kernel.load_state_dict(on_torch.state_dict())
    x = torch.randn(6, 4, 3)
    if packed:
        x = pack_padded_sequence(x, torch.tensor([6, 3, 5, 1]), enforce_sorted=False)
    results = []
    for module in (on_torch, on_kernel):
        torch.manual_seed(1)
        output = module(x)[0]
        results.append(output.data if packed else output)
    if reset_after or not packed:
        assert_close(results[0], results[1], torch.float32, "the same dropout")
    on_torch.eval()
    output = on_torch(x)[0]
    assert not torch.allclose(results[0], output.data if packed else output)  # dropout applied


def test_a_default_state_made_under_fake_tensor_mode_is_not_cached() -> None:
    """The zero initial state built under FakeTensorMode is a fake tensor: cached, it would be
    handed to later real calls of the same shape (an unusual one here, not cached before)."""
    torch.manual_seed(0)
    ours, oracle = GRU(3, 13), torch.nn.GRU(3, 13)
    oracle.load_state_dict(ours.state_dict())
    with FakeTensorMode(allow_non_fake_inputs=True):
        ours(torch.empty(4, 11, 3))
    x = torch.randn(4, 11, 3)
    for actual, expected in zip(ours(x), oracle(x), strict=True):
        torch.testing.assert_close(actual, expected)
