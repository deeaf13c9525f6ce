"""Layers: the projection head and the SimCLR augmentation and its parts."""

from keras_simclr.layers.fused_batch_norm import FusedBatchNormalization
from keras_simclr.layers.projection_head import ProjectionHead
from keras_simclr.layers.random_color_distortion import RandomColorDistortion
from keras_simclr.layers.random_gaussian_blur import RandomGaussianBlur
from keras_simclr.layers.random_resized_crop import RandomResizedCrop
from keras_simclr.layers.simclr_augmentation import SimCLRAugmentation

__all__ = [
    "FusedBatchNormalization",
    "ProjectionHead",
    "RandomColorDistortion",
    "RandomGaussianBlur",
    "RandomResizedCrop",
    "SimCLRAugmentation",
]
