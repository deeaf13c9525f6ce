"""Backbones and the encoder adapter."""

from keras_simclr.models.encoder import GlobalPooledEncoder, pooled_encoder
from keras_simclr.models.resnet_backbone import ResNetBackbone

__all__ = ["GlobalPooledEncoder", "ResNetBackbone", "pooled_encoder"]
