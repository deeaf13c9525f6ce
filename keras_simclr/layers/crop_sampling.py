"""SimCLR's random resized crop window: the one sampler, for tf.data and device.

Reference: Chen et al., 2020, Appendix A: "a random patch of the image is
selected, with an area uniformly sampled between 8% and 100% of that of the
original image, and an aspect ratio logarithmically sampled between 3/4 and
4/3". As in SimCLR's and torchvision's implementations, up to `attempts`
(area, aspect) draws are tried and the first that fits is kept; if none fits,
the whole image is cut to the nearest allowed aspect ratio, centred.

Two callers draw windows with it: `RandomResizedCrop` (batches on the device,
through `keras.ops` on any backend) and `datasets.crops` (one original photo at
a time inside `tf.data`, through plain TensorFlow ops, whatever the Keras
backend). Keras has no such sampler (its `RandomCrop` cuts a fixed size), so
it is written once here, against the array functions both namespaces share.
"""

import math


def sample_crop_windows(uniform, height, width, crop_area, aspect_ratio, xp):
    """Random resized crop windows from uniform draws, in the image's pixels.

    Args:
        uniform: float32 `(..., 2 * attempts + 2)` draws in [0, 1): areas,
            log-aspects, then the two position draws.
        height: float32, the image height (broadcasts against `uniform[..., 0]`).
        width: float32, the image width.
        crop_area: (low, high) share of the image area.
        aspect_ratio: (low, high) width / height of the window.
        xp: the array namespace: `keras.ops`, or `datasets.crops.TF_ARRAYS`.

    Returns:
        float32 `(top, left, crop_height, crop_width)`, each of shape
        `uniform.shape[:-1]`; positions are uniform over the spare room
        (centred for the fallback). Sizes are not rounded: a caller that cuts
        whole pixels rounds them.

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> draws = np.full((1, 22), 0.5, "float32")
        >>> top, left, h, w = sample_crop_windows(draws, 100.0, 100.0, (0.08, 1), (0.75, 4 / 3), ops)
        >>> round(float(h[0] * w[0]) / 1e4, 2)  # the middle of the area range
        0.54
    """
    attempts = (uniform.shape[-1] - 2) // 2
    low, high = crop_area
    # Sides against the attempts axis (per image when they vary per image).
    attempt_height = xp.expand_dims(height, -1)
    attempt_width = xp.expand_dims(width, -1)
    area = (
        (low + (high - low) * uniform[..., :attempts]) * attempt_height * attempt_width
    )
    log_low, log_high = math.log(aspect_ratio[0]), math.log(aspect_ratio[1])
    ratio = xp.exp(log_low + (log_high - log_low) * uniform[..., attempts:-2])
    crop_width = xp.sqrt(area * ratio)  # (..., attempts)
    crop_height = xp.sqrt(area / ratio)
    fits = xp.logical_and(crop_width <= attempt_width, crop_height <= attempt_height)
    first = xp.expand_dims(xp.argmax(xp.where(fits, 1, 0), axis=-1), -1)
    found = xp.any(fits, axis=-1)
    # Fallback: the whole image, cut to the nearest allowed aspect ratio.
    fallback_width = xp.minimum(width, height * aspect_ratio[1])
    fallback_height = xp.minimum(height, width / aspect_ratio[0])
    crop_width = xp.where(
        found, xp.take_along_axis(crop_width, first, axis=-1)[..., 0], fallback_width
    )
    crop_height = xp.where(
        found, xp.take_along_axis(crop_height, first, axis=-1)[..., 0], fallback_height
    )
    spare_height, spare_width = height - crop_height, width - crop_width
    top = xp.where(found, uniform[..., -2] * spare_height, spare_height / 2)
    left = xp.where(found, uniform[..., -1] * spare_width, spare_width / 2)
    return top, left, crop_height, crop_width
