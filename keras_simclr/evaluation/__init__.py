"""Evaluation of representations: linear probe, weighted kNN, fine-tuning,
and SimCLRv2's distillation."""

from keras_simclr.evaluation import legacy  # noqa: F401  (loads 0.1.0 files)
from keras_simclr.evaluation.distill import (
    Distiller,
    distill,
    distillation_loss,
    student_classifier,
)
from keras_simclr.evaluation.features import (
    check_labels,
    encode_images,
    extract_features,
    feature_extractor,
)
from keras_simclr.evaluation.fine_tune import (
    FineTuneResult,
    balanced_subset,
    fine_tune,
)
from keras_simclr.evaluation.knn import knn_accuracy, weighted_knn_predict
from keras_simclr.evaluation.linear_probe import (
    LinearProbeResult,
    fit_linear_classifier,
    linear_probe,
)
from keras_simclr.evaluation.neighbours import nearest_neighbours
from keras_simclr.evaluation.representation import (
    RepresentationScores,
    evaluate_representation,
)

__all__ = [
    "Distiller",
    "distill",
    "distillation_loss",
    "student_classifier",
    "FineTuneResult",
    "LinearProbeResult",
    "RepresentationScores",
    "balanced_subset",
    "check_labels",
    "encode_images",
    "evaluate_representation",
    "extract_features",
    "feature_extractor",
    "fine_tune",
    "fit_linear_classifier",
    "knn_accuracy",
    "linear_probe",
    "nearest_neighbours",
    "weighted_knn_predict",
]
