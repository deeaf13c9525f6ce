import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import fixed_augmentation

import keras_simclr as ks
from keras_simclr.evaluation.fine_tune import fine_tuning_layers


def random_images(batch=16, height=32, width=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, height, width, channels), dtype="uint8")


def test_output_shape_dtype_and_range():
    augment = ks.layers.SimCLRAugmentation(24, seed=0)
    views = augment(random_images(height=40, width=36))
    assert views.shape == (16, 24, 24, 3) and views.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(views)) and float(tf.reduce_max(views)) <= 1.0


def test_uint8_and_float_inputs_agree():
    images = random_images()
    from_uint8 = ks.layers.SimCLRAugmentation(32, seed=3)(images)
    from_float = ks.layers.SimCLRAugmentation(32, value_range=(0, 1), seed=3)(
        images.astype("float32") / 255.0
    )
    np.testing.assert_allclose(from_uint8, from_float, atol=1e-5)


def test_same_seed_same_views_and_successive_calls_differ():
    images = random_images()
    first, second = (ks.layers.SimCLRAugmentation(32, seed=7) for _ in range(2))
    view_1, view_2 = first(images), first(images)
    np.testing.assert_array_equal(view_1, second(images))
    np.testing.assert_array_equal(view_2, second(images))
    assert not np.allclose(view_1, view_2)  # two calls -> two different views


def test_inference_is_a_deterministic_central_resize():
    images = random_images(height=32, width=48)
    augment = ks.layers.SimCLRAugmentation(32, seed=0)
    views = augment(images, training=False)
    np.testing.assert_array_equal(views, augment(images, training=False))
    np.testing.assert_allclose(views, images[:, :, 8:40] / 255.0, atol=1e-5)
    assert augment(images, training=False).shape == (16, 32, 32, 3)
    small = ks.layers.SimCLRAugmentation(16)(images, training=False)
    assert small.shape == (16, 16, 16, 3)


def test_identity_when_every_augmentation_is_off():
    images = random_images()
    augment = fixed_augmentation(32)
    np.testing.assert_allclose(augment(images), images / 255.0, atol=1e-6)


def test_every_image_gets_its_own_crop():
    crop = ks.layers.RandomResizedCrop(32, seed=0)
    boxes = crop.sample_boxes(64, 32, 32).numpy()
    assert len(np.unique(np.round(boxes, 5), axis=0)) == 64
    # The same image repeated in a batch gives different views.
    same = np.repeat(random_images(1), 8, axis=0)
    views = ks.layers.SimCLRAugmentation(32, seed=1)(same).numpy()
    assert len({v.tobytes() for v in views}) == 8


def box_area_and_aspect(boxes, height, width):
    box_height = np.abs(boxes[:, 2] - boxes[:, 0]) * height
    box_width = np.abs(boxes[:, 3] - boxes[:, 1]) * width
    return box_height * box_width / (height * width), box_width / box_height


@pytest.mark.parametrize("height, width", [(32, 32), (40, 64)])
def test_crop_area_and_aspect_distributions(height, width):
    crop = ks.layers.RandomResizedCrop(32, crop_area=(0.08, 1.0), seed=0)
    boxes = crop.sample_boxes(20000, height, width).numpy()
    area, aspect = box_area_and_aspect(boxes, height, width)
    assert area.min() >= 0.08 - 1e-5 and area.max() <= 1 + 1e-5
    assert aspect.min() >= 3 / 4 - 1e-4 and aspect.max() <= 4 / 3 + 1e-4
    assert (boxes[:, [0, 2]] >= -1e-6).all() and (boxes[:, [0, 2]] <= 1 + 1e-6).all()
    assert (boxes[:, [1, 3]] >= -1e-6).all() and (boxes[:, [1, 3]] <= 1 + 1e-6).all()
    # Log-aspect spans the range; on square images it is symmetric around 0
    # (on wide images, tall large crops fit less often and are redrawn).
    if height == width:
        assert abs(np.mean(np.log(aspect))) < 0.01
        # Areas spread over the whole range (on a 40x64 image no crop of
        # aspect <= 4/3 can cover more than 83% of it).
        assert np.quantile(area, 0.05) < 0.15 and np.quantile(area, 0.95) > 0.85
    assert np.quantile(aspect, 0.02) < 0.8 and np.quantile(aspect, 0.98) > 1.25


def test_flip_rate():
    crop = ks.layers.RandomResizedCrop(32, seed=0)
    boxes = crop.sample_boxes(20000, 32, 32).numpy()
    flipped = np.mean(boxes[:, 1] > boxes[:, 3])
    assert abs(flipped - 0.5) < 4 * math.sqrt(0.25 / 20000)
    no_flip = ks.layers.RandomResizedCrop(32, flip=False, seed=0)
    boxes = no_flip.sample_boxes(1000, 32, 32).numpy()
    assert (boxes[:, 1] < boxes[:, 3]).all()


def test_flip_box_mirrors_the_image():
    images = random_images(4).astype("float32")
    mirrored = tf.image.crop_and_resize(
        images, [[0, 1, 1, 0]] * 4, tf.range(4), (32, 32)
    )
    np.testing.assert_allclose(mirrored, images[:, :, ::-1], atol=1e-4)


def is_gray(views):
    return np.all(np.abs(views - views[..., :1]) < 1e-5, axis=(1, 2, 3))


@pytest.mark.parametrize("jitter_rate, grayscale_rate", [(0.8, 0.2), (0.3, 0.6)])
def test_probabilities_within_sampling_error(jitter_rate, grayscale_rate):
    n = 4000
    distort = ks.layers.RandomColorDistortion(
        jitter_rate=jitter_rate, grayscale_rate=grayscale_rate, seed=0
    )
    colourful = (
        np.random.default_rng(0).uniform(0.2, 0.8, (n, 2, 2, 3)).astype("float32")
    )
    views = distort(colourful).numpy()
    tolerance = 4 * math.sqrt(0.25 / n)
    assert abs(is_gray(views).mean() - grayscale_rate) < tolerance
    not_gray = ~is_gray(views)
    changed = np.any(np.abs(views - colourful) > 1e-6, axis=(1, 2, 3))
    assert abs(changed[not_gray].mean() - jitter_rate) < 2 * tolerance
    blur = ks.layers.RandomGaussianBlur(blur_rate=0.5, seed=0)
    kernels = blur.sample_kernels(n, 5).numpy()
    assert abs((kernels[:, 2] < 1).mean() - 0.5) < tolerance


def test_jitter_factors_follow_the_strength():
    distort = ks.layers.RandomColorDistortion(
        jitter_strength=0.5, jitter_rate=1.0, grayscale_rate=0.0, seed=0
    )
    matrix, offset = distort.sample_transforms(tf.fill((2000, 3), 0.5))
    # Determinants of brightness·contrast·saturation·hue maps: the brightness,
    # contrast (each in [0.6, 1.4]) and saturation factors bound them.
    determinants = np.linalg.det(matrix.numpy())
    assert (determinants > 0.6**8 - 1e-4).all() and (determinants < 1.4**8 + 1e-4).all()
    assert np.std(determinants) > 0.05
    zero = ks.layers.RandomColorDistortion(
        jitter_strength=0.0, grayscale_rate=0.0, seed=0
    )
    matrix, offset = zero.sample_transforms(tf.fill((8, 3), 0.5))
    np.testing.assert_allclose(matrix, np.broadcast_to(np.eye(3), (8, 3, 3)), atol=1e-6)


def test_each_jitter_operation_is_its_reference_map():
    from keras_simclr.layers.random_color_distortion import GRAY_MATRIX, LUMA

    x = np.random.default_rng(0).uniform(size=(1, 4, 4, 3)).astype("float32")
    gray = x @ LUMA
    np.testing.assert_allclose((x @ GRAY_MATRIX)[..., 0], gray, rtol=1e-6)
    # Hue rotation keeps luma (Y of YIQ) and maps a zero-angle to identity.
    distort = ks.layers.RandomColorDistortion(
        jitter_strength=1.0, jitter_rate=1.0, grayscale_rate=0.0, seed=0
    )
    views = distort(np.broadcast_to(x, (64, 4, 4, 3)).copy()).numpy()
    assert np.isfinite(views).all()


def test_small_matrix_products_match_numpy():
    from keras_simclr.layers.random_color_distortion import _matmul, _vecmat

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 5, 3, 3)).astype("float32")
    v = rng.normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(_matmul(a, b), a @ b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_matmul(a, b[0]), a @ b[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_matmul(b[0], a), b[0] @ a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        _vecmat(v, a), np.einsum("bc,bcd->bd", v, a), rtol=1e-5, atol=1e-6
    )


def test_value_range_scale_is_folded_into_the_colour_map():
    x = np.random.default_rng(0).uniform(0, 255, (16, 6, 6, 3)).astype("float32")
    views = [
        ks.layers.RandomColorDistortion(seed=3).distort(images, scale=scale)
        for images, scale in ((x, 1 / 255), (x / 255, 1.0))
    ]
    np.testing.assert_allclose(views[0], views[1], atol=1e-5)


def test_blur_matches_numpy_convolution():
    blur = ks.layers.RandomGaussianBlur(blur_rate=1.0, seed=0)
    images = np.random.default_rng(0).uniform(size=(3, 20, 20, 3)).astype("float32")
    blurred = blur(images).numpy()
    blur = ks.layers.RandomGaussianBlur(blur_rate=1.0, seed=0)  # same draws again
    kernels = blur.sample_kernels(3, blur.kernel_size(20)).numpy()
    r = kernels.shape[1] // 2
    padded = np.pad(images, [(0, 0), (r, r), (r, r), (0, 0)], mode="reflect")
    for b in range(3):
        vertical = sum(kernels[b, k] * padded[b, k : k + 20] for k in range(2 * r + 1))
        expected = sum(
            kernels[b, k] * vertical[:, k : k + 20] for k in range(2 * r + 1)
        )
        np.testing.assert_allclose(blurred[b], expected, atol=1e-5)
    assert blur.kernel_size(224) == 23 and blur.kernel_size(32) == 3


def test_grayscale_input_is_converted_and_other_channels_refused():
    views = ks.layers.SimCLRAugmentation(16, seed=0)(random_images(channels=1))
    assert views.shape == (16, 16, 16, 3)
    with pytest.raises(ValueError, match="4 channels"):
        ks.layers.SimCLRAugmentation(16)(random_images(channels=4))
    with pytest.raises(ValueError, match="shape"):
        ks.layers.SimCLRAugmentation(16)(np.zeros((4, 32, 32), "uint8")[None, None])


def test_single_image_and_tf_data_map():
    augment = ks.layers.SimCLRAugmentation(16, seed=0)
    assert augment(random_images(1)[0]).shape == (16, 16, 3)
    dataset = tf.data.Dataset.from_tensor_slices(random_images(12)).batch(4)
    dataset = dataset.map(lambda batch: (augment(batch), augment(batch)))
    for view_a, view_b in dataset:
        assert view_a.shape == (4, 16, 16, 3) and not np.allclose(view_a, view_b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"crop_area": (0.5, 0.1)}, "crop_area"),
        ({"aspect_ratio": (0, 1)}, "aspect_ratio"),
        ({"value_range": (1, 1)}, "value_range"),
        ({"jitter_rate": 1.5}, "jitter_rate"),
        ({"blur_rate": -0.1}, "rate"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ks.layers.SimCLRAugmentation(32, **kwargs)


def test_serialization_round_trip():
    augment = ks.layers.SimCLRAugmentation(
        24, jitter_strength=0.5, blur_rate=0.0, seed=5
    )
    restored = keras.layers.deserialize(keras.layers.serialize(augment))
    assert restored.get_config() == augment.get_config()
    images = random_images()
    np.testing.assert_array_equal(
        restored(images), ks.layers.SimCLRAugmentation(**augment.get_config())(images)
    )


def test_augmentation_grid_writes_a_png(tmp_path):
    path = tmp_path / "grid.png"
    grid = ks.visualize.augmentation_grid(
        random_images(3), ks.layers.SimCLRAugmentation(32, seed=0), path, views=2
    )
    decoded = tf.io.decode_png(tf.io.read_file(str(path))).numpy()
    np.testing.assert_array_equal(decoded, grid)
    assert grid.shape == (3 * 34 + 2, 3 * 34 + 2, 3)


@keras.saving.register_keras_serializable(package="keras_simclr_tests")
class Solarize(keras.layers.Layer):
    """A new appearance augmentation, as a contributor would add one: pixels
    above `threshold` are inverted (SimCLRv2 / BYOL's solarize, rate 1)."""

    def __init__(self, threshold=0.5, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold

    def call(self, views, training=True):
        if not training:
            return views
        return keras.ops.where(views > self.threshold, 1.0 - views, views)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


def test_the_appearance_is_an_ordered_list_of_layers():
    # Issue #32: a new augmentation is one layer and one entry; [] turns the
    # appearance off as a whole (what fine-tuning does).
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), "uint8")
    plain = ks.layers.SimCLRAugmentation(16, appearance_layers=[], seed=1)
    solarized = ks.layers.SimCLRAugmentation(
        16, appearance_layers=[Solarize(0.5)], seed=1
    )
    views = np.asarray(plain.appearance(images, training=True))
    np.testing.assert_allclose(
        solarized.appearance(images, training=True),
        np.where(views > 0.5, 1 - views, views),
        atol=1e-6,
    )
    default = ks.layers.SimCLRAugmentation(16)
    assert [layer.name for layer in default.appearance_layers] == [
        "color_distortion",
        "blur",
    ]
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(solarized)
    )
    assert [type(layer) for layer in restored.appearance_layers] == [Solarize]
    assert "appearance_layers" not in default.get_config()  # older files' form
    with pytest.raises(TypeError, match="Keras layers"):
        ks.layers.SimCLRAugmentation(16, appearance_layers=[lambda x: x])
    model = ks.recipes.simclr_model(18, 0.0625, image_size=16, projection_dim=8)
    preprocessing, _, _ = fine_tuning_layers(model)
    assert preprocessing.appearance_layers == []
