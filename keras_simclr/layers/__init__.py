"""Layers: the projection head and the SimCLR augmentation."""

from keras_simclr.layers.projection_head import ProjectionHead

__all__ = ["ProjectionHead"]
