"""Contrastive losses."""

from keras_simclr.losses.nt_xent import (
    NTXent,
    contrastive_accuracy,
    contrastive_logits,
    nt_xent_loss,
)

__all__ = ["NTXent", "contrastive_accuracy", "contrastive_logits", "nt_xent_loss"]
