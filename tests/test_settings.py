"""`PretrainingSettings` (the one spelling of a run's settings), the batch
plan, and the run's stages each on their own (issue #40)."""

import argparse
import dataclasses

import numpy as np
import pytest

import keras_simclr as ks
from keras_simclr import cli, resuming, workflow
from keras_simclr.batching import plan_batch
from keras_simclr.settings import DistillSettings, PretrainingSettings, add_arguments


def pretrain_parser():
    return add_arguments(argparse.ArgumentParser())


def test_the_parser_is_generated_from_the_fields_with_their_defaults():
    parsed = pretrain_parser().parse_args([])
    assert PretrainingSettings.from_arguments(parsed) == PretrainingSettings()
    # Every field has a flag, and its help is the field's.
    text = pretrain_parser().format_help()
    for field in dataclasses.fields(PretrainingSettings):
        flag = field.metadata["flag"].get("flag") or "--" + field.name.replace("_", "-")
        assert flag in text, flag
        assert field.metadata["help"].split()[0] in text


def test_the_command_line_parses_into_the_same_settings():
    args = cli.build_parser().parse_args(
        ["pretrain", "--epochs", "3", "--crop-area", "0.2,0.9", "--no-probe"]
    )
    settings = PretrainingSettings.from_arguments(args)
    assert settings == PretrainingSettings(epochs=3, crop_area=(0.2, 0.9), probe=False)
    assert settings.describe() == "--epochs 3 --crop-area 0.2,0.9 --no-probe"
    # What it prints parses back to the same settings.
    again = PretrainingSettings.from_arguments(
        pretrain_parser().parse_args(settings.describe().split())
    )
    assert again == settings
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["pretrain", "--epochs", "0"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["pretrain", "--depth", "20"])


def test_the_distill_command_is_generated_from_distill_settings():
    args = cli.build_parser().parse_args(["distill", "t.keras", "--epochs", "3"])
    settings = DistillSettings.from_arguments(args)
    assert settings == DistillSettings("t.keras", epochs=3)
    assert settings.describe() == "--epochs 3"  # the positional is not a flag
    text = cli.build_parser().parse_args(["distill", "t.keras"])
    assert DistillSettings.from_arguments(text) == DistillSettings("t.keras")
    resumed = settings.resumed()
    assert resumed["teacher"] == "t.keras" and resumed["epochs"] == 3
    assert not {"output", "resume", "checkpoint_every"} & set(resumed)
    with pytest.raises(SystemExit):  # the teacher is required
        cli.build_parser().parse_args(["distill"])


def test_settings_refuse_what_no_run_can_use():
    with pytest.raises(ValueError, match="seed"):
        PretrainingSettings(seed=-1)
    with pytest.raises(ValueError, match="mixed_precision"):
        PretrainingSettings(mixed_precision="half")
    with pytest.raises(ValueError, match="NT-Xent needs negatives"):
        PretrainingSettings(batch_size=1)
    with pytest.raises(TypeError):
        PretrainingSettings().replace(epoch=3)  # a misspelt setting


def test_resumed_settings_are_the_marked_fields_as_json_values():
    recorded = PretrainingSettings(epochs=5).resumed(image_size=16)
    assert recorded["epochs"] == 5 and recorded["image_size"] == 16
    assert recorded["crop_area"] == [0.08, 1.0]
    assert "output" not in recorded and "verbose" not in recorded


@pytest.mark.parametrize(
    "batch, processes, replicas, share",
    [(128, 1, 1, 128), (256, 2, 8, 128), (12, 3, 4, 4), (6, 1, 2, 6)],
)
def test_the_batch_plan_gives_each_process_its_share(batch, processes, replicas, share):
    assert plan_batch(batch, processes, replicas) == share


@pytest.mark.parametrize(
    "batch, processes, replicas", [(10, 4, 1), (12, 1, 8), (1, 1, 1)]
)
def test_the_batch_plan_refuses_an_uneven_split_with_one_message(
    batch, processes, replicas
):
    with pytest.raises(ValueError, match=r"split evenly over .* use a multiple of"):
        plan_batch(batch, processes, replicas)


@pytest.fixture
def tiny_settings(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(
        path, x=rng.integers(0, 256, (40, 16, 16, 3), "uint8"), y=np.arange(40) % 2
    )
    return PretrainingSettings(
        dataset=str(path),
        output=str(tmp_path / "tiny.keras"),
        width=0.0625,
        epochs=1,
        batch_size=8,
        verbose=0,
    )


def test_plan_and_build_stages_on_their_own(tiny_settings):
    strategy = ks.distribute.make_strategy("default")
    plan = workflow.plan_run(tiny_settings, strategy)
    assert plan.image_size == 16
    assert plan.steps_per_epoch == len(plan.splits.unlabeled) // 8
    model = workflow.build(plan, seed=0)
    assert isinstance(model, ks.SimCLRModel) and model.optimizer is not None
    assert model.temperature == 0.5  # the paper's below 64 px


def test_the_resume_stage_refuses_other_settings(tiny_settings):
    strategy = ks.distribute.make_strategy("default")
    plan = workflow.plan_run(tiny_settings, strategy)
    model = workflow.build(plan, seed=0)
    assert workflow.resume(plan, model, print, writer=True) is None
    assert resuming.SETTINGS_FILE in __import__("os").listdir(
        plan.backup
    )  # recorded beside the checkpoints
    changed = dataclasses.replace(plan, settings=tiny_settings.replace(epochs=2))
    # A checkpoint of the first settings, then a resume under others.
    model.fit(np.zeros((8, 16, 16, 3), "uint8"), batch_size=8, epochs=1, verbose=0, callbacks=[
        ks.callbacks.AtomicBackupAndRestore(plan.backup, delete_checkpoint=False)
    ])  # fmt: skip
    with pytest.raises(ValueError, match="pass --resume"):
        workflow.resume(changed, model, print, writer=True)
    resumed = dataclasses.replace(
        changed, settings=changed.settings.replace(resume=True)
    )
    with pytest.raises(ValueError, match=r"--epochs 1 \(now 2\)"):
        workflow.resume(resumed, model, print, writer=True)


def test_pretrain_takes_settings_or_keywords_alike(tiny_settings):
    run = ks.workflow.pretrain(tiny_settings, probe=False, log=None)
    assert run.scores == [] and len(run.history.history["loss"]) == 1
