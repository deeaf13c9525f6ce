"""`ks.workflow.pretrain`: the command line's run, called from Python."""

import numpy as np
import pytest

import keras_simclr as ks


@pytest.fixture
def tiny_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(
        path,
        x=rng.integers(0, 256, (48, 16, 16, 3), "uint8"),
        y=np.arange(48) % 2,
    )
    return str(path)


def test_pretrain_from_python_saves_probes_and_reports(tiny_npz, tmp_path):
    messages = []
    output = str(tmp_path / "tiny.keras")
    run = ks.workflow.pretrain(
        tiny_npz,
        output=output,
        width=0.0625,
        epochs=1,
        batch_size=16,
        verbose=0,
        log=messages.append,
    )
    assert isinstance(run.model, ks.SimCLRModel)
    assert run.steps_per_epoch == len(run.splits.unlabeled) // 16
    assert len(run.history.history["loss"]) == 1
    assert [label for label, _ in run.scores] == [
        "SimCLR pretrained",
        "random initialisation",
    ]
    assert all(0 <= scores.linear <= 1 for _, scores in run.scores)
    assert any(message.startswith("keras-simclr: pretraining") for message in messages)
    assert (tmp_path / "tiny.keras").exists()
    assert not (tmp_path / "tiny.keras.backup").exists()
    with pytest.raises(ValueError, match="mixed_precision"):
        ks.workflow.pretrain(tiny_npz, output=output, mixed_precision="half")
