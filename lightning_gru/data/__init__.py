"""LightningDataModules for the three experiments: IMDb sentiment, The Time Machine, a sine wave."""

from lightning_gru.data._common import SourceUnreachableError
from lightning_gru.data.imdb import IMDbDataModule, tokenize
from lightning_gru.data.samplers import BucketBatchSampler, EpochBatchSampler
from lightning_gru.data.vocab import Vocab

__all__ = [
    "BucketBatchSampler",
    "EpochBatchSampler",
    "IMDbDataModule",
    "SourceUnreachableError",
    "Vocab",
    "tokenize",
]
