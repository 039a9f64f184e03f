"""Large kernel buffers are advised to use transparent huge pages (Linux)."""

import os
import sys
from pathlib import Path

import pytest
import torch

from lightning_gru import _ext
from lightning_gru.functional._cython import HUGE_PAGE_MIN_BYTES, _new_buffer

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def test_a_region_without_a_whole_page_is_not_advised() -> None:
    """Only the whole pages inside a region are advised (its start rounded up, its end down)."""
    page = os.sysconf("SC_PAGESIZE") if hasattr(os, "sysconf") else 4096
    buffer = torch.empty(4 * page // 4)  # four pages of float32
    aligned = (buffer.data_ptr() + page - 1) // page * page  # a page boundary inside it
    assert _ext.advise_huge_pages(buffer.data_ptr() + 4, 32) is False
    assert _ext.advise_huge_pages(aligned, page // 2) is False  # from a boundary, half a page
    assert _ext.advise_huge_pages(aligned + 4, page) is False  # up to a boundary, under a page


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not THP.exists(), reason="needs Linux with THP"
)
def test_a_large_buffer_is_advised() -> None:
    buffer = torch.empty(HUGE_PAGE_MIN_BYTES // 4)
    assert _ext.advise_huge_pages(buffer.data_ptr(), HUGE_PAGE_MIN_BYTES) is True


def test_new_buffer_has_the_requested_shape_and_dtype() -> None:
    like = torch.zeros(2, dtype=torch.float64)
    for size in ((3, 5), (HUGE_PAGE_MIN_BYTES // 8 + 1,)):
        buffer = _new_buffer(like, *size)
        assert buffer.shape == size and buffer.dtype == torch.float64
        buffer.fill_(1.0)  # the advised memory is ordinary memory
        assert float(buffer.sum()) == buffer.numel()
