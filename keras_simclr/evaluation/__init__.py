"""Evaluation of representations: linear probe and weighted kNN."""

from keras_simclr.evaluation.features import extract_features
from keras_simclr.evaluation.knn import knn_accuracy, weighted_knn_predict
from keras_simclr.evaluation.linear_probe import LinearProbeResult, linear_probe

__all__ = [
    "LinearProbeResult",
    "extract_features",
    "knn_accuracy",
    "linear_probe",
    "weighted_knn_predict",
]
