"""Evaluation of representations: linear probe and weighted kNN."""

from keras_simclr.evaluation.embedding_map import embedding_map
from keras_simclr.evaluation.features import extract_features
from keras_simclr.evaluation.fine_tune import (
    FineTunedClassifier,
    FineTuneResult,
    balanced_subset,
    fine_tune,
)
from keras_simclr.evaluation.knn import knn_accuracy, weighted_knn_predict
from keras_simclr.evaluation.linear_probe import LinearProbeResult, linear_probe

__all__ = [
    "FineTuneResult",
    "FineTunedClassifier",
    "balanced_subset",
    "embedding_map",
    "fine_tune",
    "LinearProbeResult",
    "extract_features",
    "knn_accuracy",
    "linear_probe",
    "weighted_knn_predict",
]
