"""Canaries for the private Keras hooks keras-simclr depends on.

Each test fails with a message saying which of our overrides to revisit when
a Keras upgrade renames, stops calling or changes one of these hooks.
"""

import inspect

import keras
import numpy as np
from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

import keras_simclr as ks


def _fix(hook, where, why):
    return (
        f"Keras {keras.__version__} changed `{hook}`, which {where} relies on "
        f"({why}). Re-read Keras's implementation and update {where}."
    )


def test_fit_still_calls_maybe_symbolic_build():
    signature = inspect.signature(TensorFlowTrainer._maybe_symbolic_build)
    calls = inspect.getsource(TensorFlowTrainer.fit)
    assert list(signature.parameters) == ["self", "iterator", "data_batch"] and (
        "_maybe_symbolic_build(" in calls
    ), _fix(
        "Model._maybe_symbolic_build(iterator, data_batch)",
        "SimCLRModel._maybe_symbolic_build",
        "it skips Keras's all-reduced symbolic build, which fails for uint8 "
        "images under multi-worker collectives",
    )


def test_fit_still_resumes_from_initial_epoch_attribute():
    epochs_run = []

    class Resume(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.model._initial_epoch = 2

        def on_epoch_begin(self, epoch, logs=None):
            epochs_run.append(epoch)

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((4, 1), "float32")
    model.fit(x, x, epochs=4, verbose=0, callbacks=[Resume()])
    assert epochs_run == [2, 3], _fix(
        "Model._initial_epoch",
        "callbacks.AtomicBackupAndRestore.on_train_begin",
        "it sets it, as keras.callbacks.BackupAndRestore does, so that a "
        "restored run continues after its last finished epoch",
    )


def test_optimizer_still_applies_decoupled_decay_through_the_hooks():
    apply_source = inspect.getsource(
        keras.optimizers.Optimizer._backend_apply_gradients
    )
    use_signature = inspect.signature(keras.optimizers.Optimizer._use_weight_decay)
    assert "_apply_weight_decay(" in apply_source and list(
        use_signature.parameters
    ) == ["self", "variable"], _fix(
        "Optimizer._apply_weight_decay / _use_weight_decay(variable)",
        "optimizers.LARS",
        "LARS disables the base class's decoupled decay by overriding "
        "_apply_weight_decay and honours exclude_from_weight_decay(...) "
        "through _use_weight_decay",
    )


def test_lars_weight_decay_is_coupled_only():
    # One LARS step with momentum 0 and no layer adaptation on w = 1, g = 0:
    # coupled decay alone moves w by lr * weight_decay; decoupled decay (the
    # base class's, if our override stopped working) would move it twice.
    variable = keras.Variable(np.ones((2, 2), "float32"))
    optimizer = ks.optimizers.LARS(
        0.5,
        momentum=0.0,
        weight_decay=0.1,
        exclude_from_layer_adaptation=lambda v: True,
    )
    optimizer.apply([np.zeros((2, 2), "float32")], [variable])
    np.testing.assert_allclose(
        variable.numpy(),
        np.full((2, 2), 1 - 0.5 * 0.1),
        err_msg=_fix(
            "Optimizer._apply_weight_decay",
            "optimizers.LARS._apply_weight_decay",
            "weight decay must be applied once, inside update_step",
        ),
    )
