"""LightningDataModules for the three experiments: IMDb sentiment, The Time Machine, a sine wave."""

from lightning_gru.data._common import DataConfigError, DataFileError, SourceUnreachableError
from lightning_gru.data.imdb import IMDbDataModule, tokenize
from lightning_gru.data.samplers import BucketBatchSampler, EpochBatchSampler, ShuffledBatchSampler
from lightning_gru.data.sine import SineWaveDataModule, generate_sine_series, load_series
from lightning_gru.data.timemachine import (
    D2L_TIME_MACHINE_URL,
    SubsequenceBatchSampler,
    TimeMachineDataModule,
    preprocess_line,
)
from lightning_gru.data.vocab import Vocab

__all__ = [
    "D2L_TIME_MACHINE_URL",
    "BucketBatchSampler",
    "DataConfigError",
    "DataFileError",
    "EpochBatchSampler",
    "ShuffledBatchSampler",
    "IMDbDataModule",
    "SineWaveDataModule",
    "SourceUnreachableError",
    "SubsequenceBatchSampler",
    "TimeMachineDataModule",
    "Vocab",
    "generate_sine_series",
    "load_series",
    "preprocess_line",
    "tokenize",
]
