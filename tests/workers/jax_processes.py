"""One JAX process of a run, started by tests/test_multi_process.py.

    python jax_processes.py processes|devices OUTPUT_PREFIX

"processes": one of several processes (Keras's `KERAS_DISTRIBUTION_*`
variables), `make_strategy("multi-worker")`; "devices": one process over the
host devices that `XLA_FLAGS` makes, `make_strategy("mirrored")`. Both fit
the same numpy images for 1 epoch at a global batch of 8 and write
`OUTPUT_PREFIX-<process>.npz`: the losses and the final weights.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(mode, prefix):
    import jax
    import keras
    import numpy as np
    from harness import tiny_images, tiny_model

    import keras_simclr as ks

    strategy = ks.distribute.make_strategy(
        "multi-worker" if mode == "processes" else "mirrored"
    )
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=ks.optimizers.LARS(0.1))
    images = tiny_images(32)
    history = model.fit(images, batch_size=8, epochs=1, shuffle=False, verbose=0)
    weights = [np.asarray(w) for w in model.get_weights()]
    np.savez(
        f"{prefix}-{jax.process_index()}.npz",
        loss=np.array(history.history["loss"]),
        iterations=int(model.optimizer.iterations),
        **{f"w{index}": w for index, w in enumerate(weights)},
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
