"""The names users choose among, in one place that loads neither Keras nor
TensorFlow: the command line offers them before anything heavy is imported,
and the modules that act on them (`export`, `distribute`, `workflow`) check
against the same tuples."""

# `keras_simclr.export.export_encoder(format=...)`, `keras-simclr export --format`.
EXPORT_FORMATS = ("saved_model", "onnx", "litert", "keras_hub", "keras")
# `keras_simclr.distribute.make_strategy(name)`, `--strategy`.
STRATEGIES = ("default", "mirrored", "multi-worker", "tpu")
# Keras's global dtype policies, `--mixed-precision`.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
