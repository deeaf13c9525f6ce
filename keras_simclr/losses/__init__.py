"""Contrastive losses."""

from keras_simclr.losses.nt_xent import (
    NTXent,
    check_temperature,
    contrastive_accuracy,
    contrastive_logits,
    nt_xent_from_logits,
    nt_xent_loss,
)

__all__ = [
    "NTXent",
    "check_temperature",
    "contrastive_accuracy",
    "contrastive_logits",
    "nt_xent_from_logits",
    "nt_xent_loss",
]
