"""The glue between torch and the kernel runs compiled, with the semantics of its source."""

import importlib.machinery
from pathlib import Path

import torch

from lightning_gru.functional import _cython
from lightning_gru.functional.gru import gru


def test_the_build_compiles_the_glue():
    """``make install`` (setup.py) builds ``_cython.py`` as an extension, which Python imports
    in place of the source."""
    assert Path(_cython.__file__).name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert Path(_cython.__file__).with_name("_cython.py").is_file()


def test_module_globals_stay_settable():
    """Tests and benchmarks set the glue's thresholds from outside; compiled code reads them."""
    saved = _cython.KEEP_N_MAX_FLOATS
    try:
        _cython.KEEP_N_MAX_FLOATS = 0
        assert not _cython.keeps_n(1, 1, True)
        _cython.KEEP_N_MAX_FLOATS = 1 << 62
        assert _cython.keeps_n(1 << 20, 1 << 10, True)
    finally:
        _cython.KEEP_N_MAX_FLOATS = saved


def test_the_compiled_glue_gives_the_kernel_results():
    ref = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True)
    x = torch.randn(6, 4, 3, requires_grad=True)
    out, h_n = gru(x, torch.zeros(4, 4, 5), ref._flat_weights, 2, True, training=True)
    expected, expected_h = ref(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_n, expected_h, atol=1e-5, rtol=1e-5)
    (grad,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(grad, torch.autograd.grad(expected.sum(), x)[0], atol=1e-5,
                               rtol=1e-5)  # fmt: skip
