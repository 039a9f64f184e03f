"""Property-based tests (hypothesis) of the Cython backend over random small shapes."""

import pytest
import torch
from _gru_helpers import LAYOUTS, Case, assert_close, check_parity, make_inputs, make_pair, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_sequence

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def cases(draw, sizes_of_16: bool = False) -> Case:
    """Random small cases; ``sizes_of_16`` also draws H and I that are multiples of 16: in
    float32 the register-block products then run on whole vectors, not only masked ones."""
    layout = draw(st.sampled_from(LAYOUTS))
    T = draw(st.integers(1, 7))
    B = 1 if layout == "unbatched" else draw(st.integers(1, 5))
    lengths = None
    if layout.startswith("packed"):
        lengths = draw(st.lists(st.integers(1, T), min_size=B, max_size=B))
        if layout == "packed_sorted":
            lengths = sorted(lengths, reverse=True)
        lengths = tuple(lengths)
    return Case(
        T=T,
        B=B,
        I=draw(st.integers(1, 6) | st.sampled_from([16]) if sizes_of_16 else st.integers(1, 6)),
        H=draw(st.integers(1, 9) | st.sampled_from([16, 32]) if sizes_of_16 else st.integers(1, 9)),
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()),
        layout=layout,
        with_h0=draw(st.booleans()),
        reset_after=draw(st.booleans()),
        lengths=lengths,
    )


@settings(SETTINGS, max_examples=100)
@given(case=cases(), seed=st.integers(0, 2**16))
def test_matches_oracle_on_random_shapes(case: Case, seed: int) -> None:
    oracle, ours = make_pair(case, torch.float64, seed=seed)
    check_parity(oracle, ours, case, make_inputs(case, seed=seed + 1), torch.float64)


@pytest.mark.slow
@settings(SETTINGS, max_examples=1000, derandomize=False)
@given(case=cases(), seed=st.integers(0, 2**16))
def test_matches_oracle_on_many_random_shapes(case: Case, seed: int) -> None:
    oracle, ours = make_pair(case, torch.float64, seed=seed)
    check_parity(oracle, ours, case, make_inputs(case, seed=seed + 1), torch.float64)


@SETTINGS
@given(case=cases(sizes_of_16=True), seed=st.integers(0, 2**16))
def test_matches_oracle_on_random_shapes_float32(case: Case, seed: int) -> None:
    oracle, ours = make_pair(case, torch.float32, seed=seed)
    check_parity(oracle, ours, case, make_inputs(case, torch.float32, seed=seed + 1), torch.float32)


@SETTINGS
@given(
    lengths=st.lists(st.integers(1, 8), min_size=1, max_size=6),
    num_layers=st.integers(1, 2),
    bidirectional=st.booleans(),
    reset_after=st.booleans(),
)
def test_batch_is_the_sequences_run_one_by_one(
    lengths: list[int], num_layers: int, bidirectional: bool, reset_after: bool
) -> None:
    """A packed batch gives, per sequence, what that sequence alone gives (no oracle involved)."""
    case = Case(I=3, H=5, num_layers=num_layers, bidirectional=bidirectional)
    _, ours = make_pair(case.with_(reset_after=reset_after))
    gen = torch.Generator().manual_seed(len(lengths))
    sequences = [torch.randn(n, case.I, generator=gen, dtype=torch.float64) for n in lengths]
    h0 = torch.randn(num_layers * case.D, len(lengths), case.H, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        packed_out, h_n = ours(pack_sequence(sequences, enforce_sorted=False), h0)
        padded, _ = torch.nn.utils.rnn.pad_packed_sequence(packed_out)  # (T, B, D * H)
        for b, seq in enumerate(sequences):
            out_b, h_b = ours(seq, h0[:, b])  # unbatched: (n, D * H), (L * D, H)
            assert_close(padded[: len(seq), b], out_b, torch.float64, f"output of sequence {b}")
            assert_close(h_n[:, b], h_b, torch.float64, f"h_n of sequence {b}")
            assert not padded[len(seq) :, b].any(), "non-zero output past the end of a sequence"


@SETTINGS
@given(case=cases())
def test_no_grad_equals_grad_mode(case: Case) -> None:
    """The inference path (nothing saved) computes what the training path computes."""
    _, ours = make_pair(case)
    inputs = make_inputs(case)
    with_grad = run(ours, case, inputs)
    with torch.inference_mode():
        without = run(ours, case, inputs)
    for a, b in zip(without, with_grad, strict=True):
        assert_close(a, b.detach(), torch.float64, "inference vs training path")
