"""SimCLR's data augmentation: one random view of each image of a batch."""

import keras
from keras import ops

from keras_simclr import backend
from keras_simclr.layers.random_color_distortion import RandomColorDistortion
from keras_simclr.layers.random_gaussian_blur import RandomGaussianBlur
from keras_simclr.layers.random_resized_crop import RandomResizedCrop

# Below this side SimCLR's CIFAR setting applies (Appendix B.9: colour strength
# 0.5, no blur); from it on, the ImageNet setting (strength 1.0, blur p = 0.5).
SMALL_IMAGE_SIDE = 64


def paper_settings(image_size):
    """SimCLR's colour strength and blur rate for views of side `image_size`.

    Reference: Chen et al., 2020, Appendix A and B.9: strength 1.0 and
    Gaussian blur with probability 0.5 for ImageNet; strength 0.5 and no blur
    for CIFAR-10 ("we do not use Gaussian blur for CIFAR-10"). Sides below 64
    pixels get the CIFAR setting. This is the one place the choice is made;
    `SimCLRModel`'s default augmentation and `keras_simclr.recipes` use it.

    Args:
        image_size: int, side of the views.

    Returns:
        dict with `jitter_strength` and `blur_rate`.

    Examples:
        >>> paper_settings(32)
        {'jitter_strength': 0.5, 'blur_rate': 0.0}
        >>> paper_settings(224)
        {'jitter_strength': 1.0, 'blur_rate': 0.5}
    """
    small = image_size < SMALL_IMAGE_SIDE
    return {
        "jitter_strength": 0.5 if small else 1.0,
        "blur_rate": 0.0 if small else 0.5,
    }


def _offset_seed(seed, offset):
    return None if seed is None else seed + offset


def paper_appearance(
    jitter_strength=1.0, jitter_rate=0.8, grayscale_rate=0.2, blur_rate=0.5, seed=None
):
    """SimCLR's appearance augmentations, in the paper's order.

    Reference: Chen et al., 2020, Appendix A: colour distortion (jitter in
    random order with p = 0.8, grayscale with p = 0.2), then Gaussian blur.
    A new default-on augmentation is one layer and one entry here.

    Returns:
        A list of layers, each mapping float `(B, S, S, 3)` views in [0, 1]
        to views in [0, 1] when called with `training=True`.
    """
    return [
        RandomColorDistortion(
            jitter_strength,
            jitter_rate,
            grayscale_rate,
            seed=_offset_seed(seed, 1),
            name="color_distortion",
        ),
        RandomGaussianBlur(blur_rate, seed=_offset_seed(seed, 2), name="blur"),
    ]


@keras.saving.register_keras_serializable(package="keras_simclr")
class SimCLRAugmentation(keras.layers.Layer):
    """Maps a batch of images to ONE SimCLR view each; call it twice for two views.

    Reference: Chen et al., 2020, Section 3: "we sequentially apply three simple
    augmentations: random cropping followed by resize back to the original
    size, random color distortions, and random Gaussian blur."

    The pipeline is `RandomResizedCrop` (with flip), then the appearance: an
    ordered list of layers, by default `paper_appearance(...)`
    (`RandomColorDistortion` → `RandomGaussianBlur`), each batched: every
    image draws its own parameters and the batch is processed by a handful
    of tensor ops (no per-image loop), so it runs in `tf.data.Dataset.map`
    on the CPU or inside a model on device. Give `appearance_layers` to add,
    drop or reorder appearance augmentations (`[]`: crop and flip only).

    Inputs are `(B, H, W, C)` (or one `(H, W, C)` image) in `value_range`, uint8
    or float. `C = 3` is RGB; `C = 1` (grayscale) is converted to RGB by
    repeating the channel; any other channel count raises `ValueError`. Output
    is float32 in [0, 1], `(B, image_size, image_size, 3)`. With
    `training=False` the central square is resized and nothing else is done.

    Args:
        image_size: int, side of the square views.
        crop_area: (low, high) crop area fraction. Defaults to (0.08, 1.0).
        aspect_ratio: (low, high) crop aspect ratio. Defaults to (3/4, 4/3).
        flip: bool, random horizontal flip. Defaults to True.
        jitter_strength: colour-jitter strength s (brightness, contrast and
            saturation 0.8·s, hue 0.2·s). Defaults to 1.0; SimCLR uses 0.5 on
            CIFAR.
        jitter_rate: probability of colour jitter. Defaults to 0.8.
        grayscale_rate: probability of grayscale. Defaults to 0.2.
        blur_rate: probability of Gaussian blur (σ ∈ [0.1, 2], kernel 10% of
            the side). Defaults to 0.5; use 0.0 for CIFAR-sized images.
        value_range: (low, high) of the input pixels. Defaults to (0, 255).
        seed: int or None. The same seed gives the same sequence of views.
        appearance_layers: None for SimCLR's (`paper_appearance` of the
            arguments above), or a list of layers applied in order to the
            cropped views in [0, 1] when training (`[]` for none; the colour
            and blur arguments are then unused).
        **kwargs: passed to `keras.layers.Layer`.

    Examples:
        >>> import numpy as np
        >>> augment = SimCLRAugmentation(image_size=24, blur_rate=0.0, seed=1)
        >>> images = np.random.randint(0, 256, (8, 32, 32, 3), dtype="uint8")
        >>> view_a, view_b = augment(images), augment(images)
        >>> view_a.shape, view_a.dtype
        (TensorShape([8, 24, 24, 3]), tf.float32)
    """

    def __init__(
        self,
        image_size,
        crop_area=(0.08, 1.0),
        aspect_ratio=(3 / 4, 4 / 3),
        flip=True,
        jitter_strength=1.0,
        jitter_rate=0.8,
        grayscale_rate=0.2,
        blur_rate=0.5,
        value_range=(0, 255),
        seed=None,
        appearance_layers=None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if len(value_range) != 2 or not value_range[0] < value_range[1]:
            raise ValueError(
                "`value_range` must be (low, high) with low < high. Received: "
                f"value_range={value_range}"
            )
        if not 0 <= blur_rate <= 1:
            raise ValueError(
                f"`blur_rate` must be in [0, 1]. Received: blur_rate={blur_rate}"
            )
        self.image_size = image_size
        self.crop_area = tuple(crop_area)
        self.aspect_ratio = tuple(aspect_ratio)
        self.flip = flip
        self.jitter_strength = jitter_strength
        self.jitter_rate = jitter_rate
        self.grayscale_rate = grayscale_rate
        self.blur_rate = blur_rate
        self.value_range = tuple(value_range)
        self.seed = seed
        # === Layers ===
        self.crop = RandomResizedCrop(
            image_size, crop_area, aspect_ratio, flip, seed=seed, name="crop"
        )
        self.custom_appearance = appearance_layers is not None
        if appearance_layers is None:
            layers = paper_appearance(
                jitter_strength, jitter_rate, grayscale_rate, blur_rate, seed
            )
            # Named attributes: files saved before the list existed load.
            self.color_distortion, self.blur = layers
        else:
            layers = list(appearance_layers)
            for layer in layers:
                if not isinstance(layer, keras.layers.Layer):
                    raise TypeError(
                        "`appearance_layers` must be Keras layers. Received: "
                        f"{type(layer).__name__}"
                    )
        self._appearance_layers = layers

    @classmethod
    def for_image_size(cls, image_size, seed=None, **overrides):
        """The paper's augmentation for views of side `image_size`.

        Colour strength 1.0 and blur with probability 0.5 (ImageNet); below
        64 pixels strength 0.5 and no blur (CIFAR-10), as `paper_settings`
        says. `SimCLRModel`'s default and `keras_simclr.recipes` use it.

        Args:
            image_size: int, side of the views.
            seed: int or None.
            **overrides: any other argument (e.g. `jitter_strength`,
                `blur_rate`, `crop_area`, `value_range`).

        Examples:
            >>> SimCLRAugmentation.for_image_size(32).blur_rate
            0.0
        """
        settings = {**paper_settings(image_size), **overrides}
        return cls(image_size, seed=seed, **settings)

    @property
    def appearance_layers(self):
        """The appearance augmentations, in the order they run."""
        return list(self._appearance_layers)

    def build(self, input_shape):
        self.built = True

    def call(self, images, training=True):
        images, single_image = self._as_batch(images)
        views = self.crop(images, training=training)  # (B, S, S, C) float32
        views = self._appearance(views, images.shape[-1], training)
        return views[0] if single_image else views

    def appearance(self, views, training=True):
        """The augmentation WITHOUT its crop: flip, colour, grayscale, blur.

        For views already cut from the original image by the input pipeline
        (`keras_simclr.datasets.image_files(mode="pretrain")`); `SimCLRModel`
        calls it on each view of the pairs it is given. Views of another
        size are resized to `image_size`.

        Args:
            views: `(B, H, W, C)` (or one `(H, W, C)`) in `value_range`.
            training: bool; False only scales (and resizes).

        Returns:
            float32 `(B, image_size, image_size, 3)` in [0, 1].
        """
        views, single_image = self._as_batch(views)
        channels = views.shape[-1]
        views = self.crop.resize_and_flip(views, training=training)
        views = self._appearance(views, channels, training)
        return views[0] if single_image else views

    def _as_batch(self, images):
        images = ops.convert_to_tensor(images)
        if images.dtype == "bool":
            raise TypeError(
                "SimCLRAugmentation expects uint8 or float images in "
                f"value_range={self.value_range}. Received: bool images; pass "
                "images.astype('uint8') * 255."
            )
        if len(images.shape) == 3 and images.shape[-1] not in (1, 3):
            raise ValueError(
                f"SimCLRAugmentation received shape={images.shape}: one (H, W, C) "
                "image needs C = 1 or 3. For a batch of grayscale images "
                "(N, H, W), add a channel axis: images[..., None]."
            )
        single_image = len(images.shape) == 3
        if single_image:
            images = images[None]
        if len(images.shape) != 4:
            raise ValueError(
                "SimCLRAugmentation expects images of shape (batch, height, width, "
                f"channels) or (height, width, channels). Received: shape={images.shape}"
            )
        channels = images.shape[-1]
        if channels not in (1, 3):
            raise ValueError(
                "SimCLRAugmentation expects RGB (3 channels) or grayscale (1 "
                f"channel) images. Received: {channels} channels (shape="
                f"{images.shape}). Drop an alpha channel with images[..., :3]."
            )
        if backend.current().CHECKS_RUN_IN_STEP:  # else in tf.data (fit)
            images = self.check_values(images)
        return images, single_image

    def check_values(self, images):
        """`images`, checked at run time: finite, inside `value_range`.

        Catches the silent failures of a wrong range: float images in [0, 1]
        read as 0–255 (views almost black), [-1, 1] (half clipped), uint16
        read as 0–255 (white), and NaN pixels. uint8 in (0, 255) needs no
        check. TensorFlow graph assertions: the layer checks on the
        TensorFlow backend; on JAX and PyTorch `SimCLRModel.fit` runs this in
        its `tf.data` input pipeline instead (a jitted step cannot raise).

        Args:
            images: a `(B, H, W, C)` TensorFlow tensor.

        Returns:
            `images`, with the checks as control dependencies.
        """
        import tensorflow as tf

        checks = self._value_range_checks(tf, images)
        if not checks:
            return images
        with tf.control_dependencies(checks):
            return tf.identity(images)

    def _value_range_checks(self, tf, images):
        low, high = self.value_range
        if images.dtype == "uint8" and low <= 0 and high >= 255:
            return []
        values = tf.cast(images, "float32")
        finite = []
        if images.dtype.is_floating:
            finite = [
                tf.debugging.Assert(
                    tf.reduce_all(tf.math.is_finite(values)),
                    ["The input images contain NaN or inf values."],
                )
            ]
        with tf.control_dependencies(finite):
            smallest, largest = tf.reduce_min(values), tf.reduce_max(values)
        tolerance = 1e-3 * (high - low)
        checks = finite + [
            tf.debugging.assert_greater_equal(
                smallest,
                tf.cast(low - tolerance, "float32"),
                message=f"pixels below value_range={self.value_range}: pass the "
                "images' range as SimCLRAugmentation(value_range=...)",
            ),
            tf.debugging.assert_less_equal(
                largest,
                tf.cast(high + tolerance, "float32"),
                message=f"pixels above value_range={self.value_range} (uint16 or "
                "0-65535 images? pass value_range=(0, 65535))",
            ),
        ]
        if images.dtype.is_floating and high > 1 and low >= 0:
            checks.append(
                tf.debugging.Assert(
                    tf.logical_or(largest > 1.0, largest <= 0.0),
                    [
                        f"the images look like floats in [0, 1] but value_range is "
                        f"{self.value_range}: pass value_range=(0, 1) (or 0-255 "
                        "images). Largest pixel:",
                        largest,
                    ],
                )
            )
        return checks

    def _appearance(self, views, channels, training):
        """Scales cropped float views to [0, 1], then the appearance layers."""
        low, high = self.value_range
        if low != 0:
            views = views - low
        scale = 1.0 / float(high - low)
        if channels == 1:
            views = ops.repeat(views, 3, axis=-1)
        layers = self._appearance_layers if training else []
        # Layers that would not change the views (rate 0) are left out.
        layers = [layer for layer in layers if getattr(layer, "active", True)]
        if layers and callable(getattr(layers[0], "distort", None)):
            # Colour distortion is affine per image: the value-range scale is
            # folded into its matrix (one pass over the pixels), and it
            # clips to [0, 1].
            views = layers[0].distort(views, scale=scale)
            layers = layers[1:]
        else:
            views = views * scale
        for layer in layers:
            views = layer(views, training=True)
        return ops.clip(views, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 3:
            return (self.image_size, self.image_size, 3)
        return (input_shape[0], self.image_size, self.image_size, 3)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "crop_area": self.crop_area,
                "aspect_ratio": self.aspect_ratio,
                "flip": self.flip,
                "jitter_strength": self.jitter_strength,
                "jitter_rate": self.jitter_rate,
                "grayscale_rate": self.grayscale_rate,
                "blur_rate": self.blur_rate,
                "value_range": self.value_range,
                "seed": self.seed,
            }
        )
        if self.custom_appearance:
            config["appearance_layers"] = [
                keras.saving.serialize_keras_object(layer)
                for layer in self._appearance_layers
            ]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)  # never modify the caller's config
        if config.get("appearance_layers") is not None:
            config["appearance_layers"] = [
                keras.saving.deserialize_keras_object(layer)
                for layer in config["appearance_layers"]
            ]
        return cls(**config)
