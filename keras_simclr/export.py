"""Exporting a pretrained encoder for serving: SavedModel, ONNX, LiteRT, keras-hub.

Every format holds the same function: images of the trained size, in the
model's `value_range` (uint8 0–255 by default), → h, the representation
SimCLR evaluates (optionally also z, the projection). Keras 3 writes the
files (`keras.Model.export`); this module builds the graph they hold and
checks its inputs, so each artefact carries its own input scaling and
nothing of keras-simclr's training parts.

    python: ks.export.export_encoder(model, "encoder_sm", format="saved_model")
    shell:  keras-simclr export simclr.keras --format onnx --output encoder.onnx
"""

import os

import keras

from keras_simclr.models.encoder import scaling_layer

FORMATS = ("saved_model", "onnx", "litert", "keras_hub", "keras")
# Keras's names for the formats it writes itself.
KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "litert": "litert"}
EXTRAS = {
    "onnx": "pip install 'keras-simclr[export]'  (tf2onnx, onnx, onnxruntime)",
    "litert": "pip install 'keras-simclr[export]'  (ai-edge-litert)",
    "keras_hub": "pip install 'keras-simclr[keras-hub]'",
}


def serving_encoder(model, projections=False):
    """A functional model: images `(B, S, S, 3)` in `value_range` → h (and z).

    On images of the trained side `S` the augmentation's inference mode is
    its value scaling alone (the central square is the whole image), so
    the served graph is `Rescaling` then the encoder: no crop op that a
    converter (ONNX, LiteRT) would have to support.

    Args:
        model: a `SimCLRModel`.
        projections: bool; also output z (`{"features", "projections"}`).

    Returns:
        A `keras.Model` whose input is uint8 when `value_range` is (0, 255),
        float32 otherwise.

    Examples:
        >>> import numpy as np
        >>> import keras_simclr as ks
        >>> model = ks.recipes.simclr_model(18, 0.0625, image_size=16)
        >>> encoder = serving_encoder(model)
        >>> images = np.random.randint(0, 256, (2, 16, 16, 3), dtype="uint8")
        >>> bool(np.allclose(encoder.predict(images, verbose=0),
        ...                  model.predict(images, verbose=0), atol=1e-5))
        True
    """
    augmentation = model.augmentation
    size = augmentation.image_size
    value_range = tuple(augmentation.value_range)
    dtype = "uint8" if value_range == (0, 255) else "float32"
    images = keras.Input((size, size, 3), dtype=dtype, name="images")
    views = scaling_layer(value_range)(keras.ops.cast(images, "float32"))
    features = model.encoder(views, training=False)
    outputs = features
    if projections:
        outputs = {
            "features": features,
            "projections": model.projection_head(features, training=False),
        }
    return keras.Model(images, outputs, name=f"{model.name}_serving_encoder")


def export_encoder(model, path, format="saved_model", projections=False):
    """Writes the encoder of a `SimCLRModel` for serving.

    Args:
        model: a `SimCLRModel`.
        path: the output: a folder (`saved_model`, `keras_hub`) or a file
            (`.onnx`, `.tflite`, `.keras`).
        format: one of `FORMATS`:
            - `"saved_model"`: TensorFlow SavedModel; endpoint `serve`
              (`tf.saved_model.load(path).serve(images)`).
            - `"onnx"`: an ONNX file (`onnxruntime`); needs `[export]`.
            - `"litert"`: a LiteRT (TFLite) flatbuffer; needs `[export]`.
            - `"keras_hub"`: a keras-hub preset folder
              (`keras_hub.models.Backbone.from_preset(path)` after
              `import keras_simclr.hub`); needs `[keras-hub]`.
            - `"keras"`: a `.keras` file of the serving encoder.
        projections: bool; also output z (not for `keras_hub`).

    Returns:
        `path`.
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {FORMATS}. Received: {format!r}")
    if not callable(getattr(model, "feature_extractor", None)):
        raise ValueError(
            f"export_encoder takes a SimCLRModel. Received: {type(model).__name__}"
        )
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"the folder of the output does not exist: {parent!r}")
    if format == "keras_hub":
        if projections:
            raise ValueError("a keras-hub backbone holds the encoder only (no z).")
        _require("keras_hub", format)
        from keras_simclr import hub

        hub.SimCLRBackbone.from_simclr_model(model).save_to_preset(path)
        return path
    encoder = serving_encoder(model, projections)
    if format == "keras":
        encoder.save(path)
        return path
    if format == "onnx":
        _require("tf2onnx" if keras.backend.backend() != "torch" else "onnx", format)
    if format == "litert":
        _require("ai_edge_litert", format)
    # Keras's ONNX export traces a model that has been called once.
    size = encoder.inputs[0].shape[1]
    encoder(keras.ops.zeros((1, size, size, 3), encoder.inputs[0].dtype))
    encoder.export(path, format=KERAS_FORMATS[format], verbose=False)
    return path


def _require(module, format):
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(
            f"Exporting to {format} needs the `{module}` package: {EXTRAS[format]}"
        )
