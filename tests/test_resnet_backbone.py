import keras
import numpy as np
import pytest

import keras_simclr as ks


def trainable_parameters(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.mark.parametrize(
    "depth, expected",
    # torchvision's resnet18 / resnet50 without the final fully connected layer.
    [(18, 11_689_512 - 513_000), (50, 25_557_032 - 2_049_000)],
)
def test_parameter_counts_match_the_standard_architectures(depth, expected):
    assert trainable_parameters(ks.models.ResNetBackbone(depth)) == expected


@pytest.mark.parametrize(
    "depth, width, expected_dim",
    [(18, 1, 512), (34, 0.25, 128), (50, 0.25, 512), (18, 2, 1024)],
)
def test_output_dimension(depth, width, expected_dim):
    model = ks.models.ResNetBackbone(
        depth, width_multiplier=width, input_shape=(32, 32, 3)
    )
    assert model.output_shape == (None, expected_dim)
    assert model.feature_dim == expected_dim


def test_deeper_models_build():
    for depth, blocks in ((101, 33), (152, 50)):
        model = ks.models.ResNetBackbone(depth, width_multiplier=0.125)
        adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
        assert len(adds) == blocks


def test_cifar_stem_keeps_resolution():
    imagenet = ks.models.ResNetBackbone(18, 0.125, input_shape=(32, 32, 3))
    cifar = ks.models.ResNetBackbone(
        18, 0.125, cifar_stem=True, input_shape=(32, 32, 3)
    )
    assert imagenet.get_layer("stage1_block1_out").output.shape[1:3] == (8, 8)
    assert cifar.get_layer("stage1_block1_out").output.shape[1:3] == (32, 32)
    assert cifar.get_layer("stem_conv").kernel.shape[:2] == (3, 3)
    assert "stem_pool" not in [layer.name for layer in cifar.layers]


def test_convolutions_have_no_bias_and_blocks_start_as_identity():
    model = ks.models.ResNetBackbone(18, 0.125, cifar_stem=True)
    convolutions = [
        layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    norms = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert convolutions and not any(layer.use_bias for layer in convolutions)
    assert len(norms) == len(convolutions)  # BatchNorm after every convolution
    last_norms = [
        n for n in norms if n.name.endswith("_2_bn") and "shortcut" not in n.name
    ]
    assert all(np.all(n.gamma.numpy() == 0) for n in last_norms)


def test_any_input_size_and_synchronized_batch_norm():
    model = ks.models.ResNetBackbone(18, 0.125, synchronized_batch_norm=True)
    for size in (32, 45):
        assert model(np.zeros((2, size, size, 3), "float32")).shape == (2, 64)
    norms = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert all(layer.synchronized for layer in norms)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": 20}, "depth"),
        ({"width_multiplier": 0}, "width_multiplier"),
        ({"input_shape": (32, 32, 1)}, "input_shape"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ks.models.ResNetBackbone(**kwargs)


def test_serialization_round_trip(tmp_path):
    model = ks.models.ResNetBackbone(
        18, 0.125, cifar_stem=True, input_shape=(16, 16, 3)
    )
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    path = tmp_path / "backbone.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, ks.models.ResNetBackbone)
    assert restored.get_config() == model.get_config()
    np.testing.assert_allclose(restored(images), model(images), rtol=1e-5, atol=1e-6)


def test_feature_map_encoders_are_pooled():
    applications = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    pooled = ks.models.pooled_encoder(applications)
    assert pooled.output_shape == (None, 2048)
    tiny = keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3), keras.layers.ReLU()]
    )
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        ks.models.pooled_encoder(tiny)(images),
        np.mean(tiny(images), axis=(1, 2)),
        rtol=1e-5,
    )
    backbone = ks.models.ResNetBackbone(18, 0.125)
    assert ks.models.pooled_encoder(backbone) is backbone


def test_subclassed_feature_map_encoder_is_wrapped():
    class TinyEncoder(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(5, 3)

        def call(self, images):
            return self.conv(images)

    pooled = ks.models.pooled_encoder(TinyEncoder())
    assert isinstance(pooled, ks.models.GlobalPooledEncoder)
    assert pooled(np.zeros((2, 8, 8, 3), "float32")).shape == (2, 5)
    with pytest.raises(TypeError, match="keras.Model"):
        ks.models.pooled_encoder(lambda x: x)


def test_keras_cv_backbone_as_encoder():
    keras_cv = pytest.importorskip("keras_cv")
    # Built from its architecture arguments: a preset name would download.
    # (keras-cv 0.9.0's ResNetV2Backbone itself fails to build on Keras 3.15.)
    backbone = keras_cv.models.ResNetBackbone(
        stackwise_filters=[8, 16],
        stackwise_blocks=[1, 1],
        stackwise_strides=[1, 2],
        include_rescaling=False,
        input_shape=(32, 32, 3),
    )
    pooled = ks.models.pooled_encoder(backbone)
    assert pooled(np.zeros((2, 32, 32, 3), "float32")).shape == (2, 16 * 4)
