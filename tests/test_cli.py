import os
import re
import signal
import subprocess
import sys
import time

import keras
import pytest

import keras_simclr as ks
from keras_simclr import cli

TINY = [
    "--width",
    "0.0625",
    "--image-size",
    "16",
    "--batch-size",
    "64",
    "--verbose",
    "0",
]


def test_pretrain_saves_a_model_and_prints_the_probe_table(tmp_path, capsys):
    output = str(tmp_path / "model.keras")
    assert cli.main(["pretrain", "--epochs", "2", "--output", output, *TINY]) == 0
    printed = capsys.readouterr().out
    assert "SimCLR pretrained" in printed and "random initialisation" in printed
    assert os.path.exists(output) and not os.path.exists(output + ".backup")
    assert not [name for name in os.listdir(tmp_path) if ".partial-" in name]
    model = keras.models.load_model(output)
    assert isinstance(model, ks.SimCLRModel) and model.augmentation.image_size == 16

    assert cli.main(["probe", output]) == 0
    assert "model.keras" in capsys.readouterr().out


def test_show_augmentations_writes_a_png(tmp_path, capsys):
    output = str(tmp_path / "views.png")
    assert (
        cli.main(
            ["show-augmentations", "--output", output, "--images", "3", "--views", "2"]
        )
        == 0
    )
    assert os.path.getsize(output) > 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["pretrain", "--batch-size", "0"], "must be positive"),
        (["pretrain", "--width", "-1"], "must be positive"),
        (["pretrain", "--depth", "20"], "invalid choice"),
        (["pretrain", "--strategy", "horovod"], "invalid choice"),
    ],
)
def test_bad_arguments_are_one_line_errors(arguments, message, capsys):
    with pytest.raises(SystemExit):
        cli.main(arguments)
    assert message in capsys.readouterr().err


def test_bad_values_found_after_parsing_are_one_line_errors(tmp_path, capsys):
    def error_of(arguments):
        assert cli.main(arguments) == 1
        message = capsys.readouterr().err
        assert message.startswith("keras-simclr: error: ")
        assert message.count("\n") == 1, message
        return message

    assert "must end with .keras" in error_of(
        ["pretrain", "--output", str(tmp_path / "model.h5"), *TINY]
    )
    too_big = [*TINY[:4], "--batch-size", "4096", "--output", str(tmp_path / "m.keras")]
    assert "at least one full batch" in error_of(["pretrain", *too_big])
    assert "no model file" in error_of(["probe", str(tmp_path / "missing.keras")])
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    assert "not a readable keras-simclr model" in error_of(["probe", str(corrupt)])


def test_parser_choices_match_the_library():
    assert cli.STRATEGIES == ks.distribute.STRATEGIES
    export_parser = cli.build_parser()._subparsers._group_actions[0].choices["export"]
    (format_action,) = [a for a in export_parser._actions if a.dest == "format"]
    assert tuple(format_action.choices) == ks.export.FORMATS


def run_cli(arguments, **kwargs):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "keras_simclr.cli", *arguments]
    return subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


@pytest.mark.slow  # 49 s; test_preemption's kill -9 test stays
def test_pretrain_resume_after_kill_9_finishes_with_the_expected_step_count(tmp_path):
    output = str(tmp_path / "model.keras")
    backup = output + ".backup"
    epochs = 6
    arguments = ["pretrain", "--epochs", str(epochs), "--output", output, "--no-probe"]
    arguments += [*TINY[:-1], "2"]  # --verbose 2: one line per epoch

    process = run_cli(arguments)
    deadline = time.time() + 240
    while ks.callbacks.latest_checkpoint(backup) is None:
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.time() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # mid-epoch 2 (or while writing its checkpoint)
    first_output = process.communicate(timeout=60)[0]
    assert process.returncode == -signal.SIGKILL, first_output[-3000:]
    assert not os.path.exists(output)
    done, path = ks.callbacks.latest_checkpoint(backup)
    assert 1 <= done < epochs
    assert sorted(os.listdir(path)) == ["model.weights.h5", "state.json"]

    refused = run_cli(arguments)
    message = refused.communicate(timeout=240)[0]
    assert refused.returncode != 0 and "pass --resume" in message

    resumed = run_cli([*arguments, "--resume"])
    second_output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, second_output[-3000:]
    assert f"resuming after epoch {done}" in second_output
    ran = re.findall(rf"Epoch (\d+)/{epochs}", second_output)
    assert ran == [str(epoch) for epoch in range(done + 1, epochs + 1)]
    steps = int(re.search(r"(\d+) epochs x (\d+) steps", second_output).group(2))
    model = keras.models.load_model(output)
    assert int(model.optimizer.iterations) == epochs * steps
    assert not os.path.exists(backup)


def test_pretrain_probe_and_embed_on_a_photo_folder_with_bad_files(
    tmp_path, capsys, caplog
):
    import numpy as np
    from harness import bad_folder

    folder = tmp_path / "photos"
    good, bad = bad_folder(folder / "animals")
    _, more_bad = bad_folder(folder / "plants")
    output = str(tmp_path / "photos.keras")
    arguments = ["pretrain", "--dataset", str(folder), "--epochs", "1"]
    arguments += ["--output", output, "--width", "0.0625", "--image-size", "16"]
    assert cli.main([*arguments, "--batch-size", "4", "--verbose", "0"]) == 0
    printed = capsys.readouterr().out + caplog.text
    assert "SimCLR pretrained" in printed and "random initialisation" in printed
    # Reported once, by fit.
    assert printed.count("could not be decoded") == 1
    assert f"{len(bad) + len(more_bad)} file(s) could not be decoded" in printed
    assert all(name in printed for name in bad)

    features_path = str(tmp_path / "features.npz")
    embed = ["embed", output, "--dataset", str(folder / "animals")]
    assert cli.main([*embed, "--output", features_path]) == 0
    with np.load(features_path) as saved:
        features, paths = saved["features"], saved["paths"]
    assert features.shape == (len(good), 32) and np.isfinite(features).all()
    assert sorted(os.path.basename(p) for p in paths) == sorted(good)


def test_make_tfrecords_writes_the_shards(tmp_path, capsys):
    from harness import bad_folder

    bad_folder(tmp_path / "photos" / "one")
    command = ["make-tfrecords", str(tmp_path / "photos"), str(tmp_path / "out")]
    assert cli.main([*command, "--shards", "3"]) == 0
    assert len(os.listdir(tmp_path / "out")) == 3
    data = ks.datasets.tfrecord_images(str(tmp_path / "out" / "*"), 16, 4, "evaluate")
    assert sum(len(batch[0]) for batch in data) == 7  # the 7 decodable images


def test_the_console_script_parses_before_loading_tensorflow():
    code = (
        "import sys; sys.argv[0] = 'keras-simclr'\n"
        "from keras_simclr import cli\n"
        "cli.build_parser().parse_args(['pretrain', '--epochs', '2'])\n"
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "False", result.stderr[-2000:]


def test_outputs_that_cannot_be_written_fail_before_training(tmp_path, capsys):
    def error_of(output):
        assert cli.main(["pretrain", *TINY, "--output", output]) == 1
        return capsys.readouterr().err

    (tmp_path / "folder.keras").mkdir()
    assert "is a folder" in error_of(str(tmp_path / "folder.keras"))
    assert "too long" in error_of(str(tmp_path / ("x" * 245 + ".keras")))
    assert "does not exist" in error_of(str(tmp_path / "missing" / "m.keras"))
    assert not list(tmp_path.glob("**/*.backup"))  # nothing was trained


def test_a_second_run_on_the_same_output_is_refused(tmp_path, capsys):
    output = str(tmp_path / "model.keras")
    with ks.saving.output_lock(output):
        assert cli.main(["pretrain", *TINY, "--output", output]) == 1
    assert "another run" in capsys.readouterr().err
    assert not os.path.exists(output + ".lock")  # released, then removed


def test_the_checkpoint_survives_a_failed_final_save(tmp_path, monkeypatch, capsys):
    output = str(tmp_path / "model.keras")

    def disk_full(model, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ks.saving, "save_model", disk_full)
    with pytest.raises(OSError, match="No space left"):
        cli.main(["pretrain", *TINY, "--epochs", "1", "--no-probe", "--output", output])
    assert ks.callbacks.latest_checkpoint(output + ".backup")[0] == 1


def test_resuming_at_the_last_epoch_saves_the_model(tmp_path, capsys, caplog):
    import logging

    output = str(tmp_path / "model.keras")
    arguments = ["pretrain", *TINY, "--epochs", "1", "--no-probe", "--output", output]
    saved = ks.saving.save_model
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            ks.saving, "save_model", lambda *_: (_ for _ in ()).throw(OSError("killed"))
        )
        with pytest.raises(OSError):
            cli.main(arguments)  # trained 1 epoch, died while saving
    assert ks.saving.save_model is saved
    with caplog.at_level(logging.WARNING, logger="keras_simclr"):
        assert cli.main([*arguments, "--resume"]) == 0
    assert "nothing was left to train" in caplog.text
    assert os.path.exists(output) and not os.path.exists(output + ".backup")


def test_more_command_line_mistakes_are_one_line_errors(tmp_path, capsys):
    def error_of(arguments):
        assert cli.main(arguments) == 1
        message = capsys.readouterr().err
        assert message.count("\n") == 1, message
        return message

    output = ["--output", str(tmp_path / "m.keras")]
    assert "--seed" in error_of(["pretrain", *TINY, "--seed", "-1", *output])
    assert "warmup_steps" in error_of(
        ["pretrain", *TINY, "--epochs", "2", "--warmup-epochs", "5", *output]
    )
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    assert "not a SimCLRModel" in error_of(["probe", str(tmp_path / "plain.keras")])


def test_resume_refuses_other_settings_naming_both_values(tmp_path, capsys):
    # #34 rows 15 and 16: the checkpoint records its run's settings.
    output = str(tmp_path / "model.keras")
    arguments = ["pretrain", *TINY, "--epochs", "1", "--no-probe", "--output", output]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            ks.saving, "save_model", lambda *_: (_ for _ in ()).throw(OSError("killed"))
        )
        with pytest.raises(OSError):
            cli.main(arguments)  # trained 1 epoch, died while saving
    capsys.readouterr()
    width = TINY[TINY.index("--width") + 1]
    for changed, expected in (
        (["--width", "0.5"], f"--width {float(width)} (now 0.5)"),
        (["--batch-size", "16"], "--batch-size"),
        (["--learning-rate", "2.0"], "--learning-rate None (now 2.0)"),
        (["--temperature", "0.2"], "(now 0.2)"),
        (["--epochs", "3"], "--epochs 1 (now 3)"),
    ):
        assert cli.main([*arguments, *changed, "--resume"]) == 1
        message = capsys.readouterr().err
        assert message.count("\n") == 1 and "was trained with" in message, message
        assert expected in message, message
    assert cli.main([*arguments, "--resume"]) == 0  # the same settings resume
    assert os.path.exists(output)
