"""Batch samplers whose order depends only on a seed and the epoch, and length bucketing."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[int]]):
    """A batch sampler whose order depends only on ``(seed, epoch)``.

    Each pass draws from ``numpy.random.default_rng([seed, epoch])`` and then moves on to the
    next epoch, so two runs with the same seed see the same batches epoch after epoch (Lightning
    iterates the dataloader once per epoch). :meth:`set_epoch` picks the epoch explicitly, for
    example when resuming. Subclasses implement :meth:`batches` and ``__len__``.

    Args:
        seed: the seed of every pass.
    """

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order for the next pass."""
        self.epoch = epoch

    def batches(self, rng: np.random.Generator) -> list[list[int]]:
        """The index batches of one pass."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: the epoch advances when the pass starts, not when ``iter`` is called, since
        # a multi-worker DataLoader calls ``iter`` twice and drops the first one unstarted.
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        yield from self.batches(rng)


class BucketBatchSampler(EpochBatchSampler):
    """Batches of examples of similar length, so that padding stays low.

    With ``shuffle=True`` each pass shuffles the examples, cuts them into chunks of
    ``bucket_batches * batch_size``, sorts every chunk by length, cuts the chunks into batches
    and shuffles the batches. Batches therefore hold neighbours in length but differ from epoch
    to epoch, reproducibly under ``seed``. With ``shuffle=False`` (evaluation) the whole set is
    sorted by length once and the order never changes.

    Args:
        lengths: the length of every example.
        batch_size: examples per batch.
        bucket_batches: batches per sorted chunk; larger means less padding and less randomness.
        shuffle: shuffle as above, or sort everything (evaluation).
        drop_last: leave out the last batch of a pass when it is smaller than ``batch_size``.
        seed: the seed of the shuffles.

    Example:
        >>> sampler = BucketBatchSampler([5, 1, 4, 2, 3, 1], batch_size=2, shuffle=False)
        >>> list(sampler)
        [[1, 5], [3, 4], [2, 0]]
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        bucket_batches: int = 100,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 42,
    ) -> None:
        super().__init__(seed)
        if batch_size < 1 or bucket_batches < 1:
            raise ValueError(f"batch_size ({batch_size}) and bucket_batches must be >= 1")
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.bucket_batches = bucket_batches
        self.shuffle = shuffle
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def batches(self, rng: np.random.Generator) -> list[list[int]]:
        n, size = len(self.lengths), self.batch_size
        if self.shuffle:
            order = rng.permutation(n)
            chunk = size * self.bucket_batches
            pieces = [order[i : i + chunk] for i in range(0, n, chunk)]
        else:
            pieces = [np.arange(n)]
        batches = []
        for piece in pieces:
            piece = piece[np.argsort(self.lengths[piece], kind="stable")]
            batches += [piece[i : i + size].tolist() for i in range(0, len(piece), size)]
        if self.drop_last and batches and len(batches[-1]) < size:
            batches.pop()  # chunks hold whole batches, so only the last one can be short
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches
