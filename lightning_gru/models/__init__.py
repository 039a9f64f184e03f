"""LightningModules of the three experiments, and the backbones (``nn.Module``) they train.

- :class:`SentimentClassifier` (:class:`SentimentNet`): IMDb review sentiment.
- :class:`LanguageModel` (:class:`LanguageModelNet`): a character language model.
- :class:`Forecaster` (:class:`ForecastNet`): sine-wave forecasting by autoregressive roll-out.
"""

from lightning_gru.models.callbacks import LearningCurves, PredictionWriter, RandomStates
from lightning_gru.models.forecasting import Forecaster, ForecastNet
from lightning_gru.models.language_model import LanguageModel, LanguageModelNet
from lightning_gru.models.sentiment import SentimentClassifier, SentimentNet, load_word_vectors

__all__ = [
    "ForecastNet",
    "Forecaster",
    "LanguageModel",
    "LanguageModelNet",
    "LearningCurves",
    "PredictionWriter",
    "RandomStates",
    "SentimentClassifier",
    "SentimentNet",
    "load_word_vectors",
]
