"""Batch samplers whose order depends only on a seed and the epoch, and length bucketing."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

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

    Example:
        >>> sampler = ShuffledBatchSampler(10, batch_size=5, seed=0)  # a subclass
        >>> first = list(sampler)  # epoch 0's order; the pass moves on to epoch 1
        >>> sampler.epoch, list(sampler) == first
        (1, False)
        >>> sampler.set_epoch(0)  # as when resuming at epoch 0
        >>> list(sampler) == first, list(ShuffledBatchSampler(10, 5, seed=0)) == first
        (True, True)
        >>> sampler.sampler is sampler  # where Lightning calls set_epoch
        True
    """

    def __init__(self, seed: int = 42) -> None:
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order for the next pass."""
        self.epoch = epoch

    @property
    def sampler(self) -> EpochBatchSampler:
        """Itself: Lightning calls ``set_epoch`` at every epoch start on the ``sampler`` of a
        DataLoader's ``batch_sampler`` (so a resumed run starts from its epoch's order), not on
        the batch sampler itself."""
        return self

    def batches(self, rng: np.random.Generator) -> list[list[int]]:
        """The index batches of one pass."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: the epoch advances when the pass starts, not when ``iter`` is called, since
        # a multi-worker DataLoader calls ``iter`` twice and drops the first one unstarted.
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        yield from self.batches(rng)


def at_trainer_epoch(sampler: EpochBatchSampler, trainer: Any) -> EpochBatchSampler:
    """``sampler`` set to the epoch ``trainer`` starts next (0 without a trainer). Lightning
    calls ``set_epoch`` at every epoch start, but a DataLoader with workers starts the first
    pass of a fit before that call: a fit resumed at epoch 5 would replay another epoch's
    batches. The epoch is the one Lightning passes to ``set_epoch``, the number of epochs
    processed: ``trainer.current_epoch`` still counts the last one as running when a checkpoint
    saved at its end is restored."""
    epoch = trainer.fit_loop.epoch_progress.current.processed if trainer is not None else 0
    sampler.set_epoch(epoch)
    return sampler


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


class ShuffledBatchSampler(EpochBatchSampler):
    """Every pass, a new order of ``range(num_examples)`` cut into batches of ``batch_size`` (the
    last one may be smaller); the order depends only on ``(seed, epoch)``, so a resumed run sees
    the batches the uninterrupted one would have.

    Args:
        num_examples: the dataset's length.
        batch_size: examples per batch.
        seed: the seed of every pass.

    Example:
        >>> sampler = ShuffledBatchSampler(5, batch_size=2, seed=0)
        >>> sorted(sum(list(sampler), [])), len(sampler)
        ([0, 1, 2, 3, 4], 3)
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int = 42) -> None:
        super().__init__(seed)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_examples = num_examples
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(self.num_examples / self.batch_size)

    def batches(self, rng: np.random.Generator) -> list[list[int]]:
        order = rng.permutation(self.num_examples).tolist()
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
