"""The command line's resume policy, for every command that checkpoints.

`keras-simclr pretrain` and `keras-simclr distill` keep their checkpoints in
`OUTPUT.backup/` (`callbacks.PreemptionCheckpoint`). A checkpoint found
there is continued only when the user asks (`--resume`), and only under the
settings its run started with (recorded beside it): a run resumed with
other ones would rebuild another model or schedule. A run a signal stopped
raises `callbacks.Preempted`, which the command line turns into the exit
status schedulers read (143 for SIGTERM).
"""

import json
import os
import signal

from keras_simclr import saving
from keras_simclr.checkpoints import Preempted, checkpoint_position

# The settings a checkpoint's run was started with, beside its checkpoints.
SETTINGS_FILE = "run-settings.json"


def backup_folder(output):
    """`m.keras` -> `m.keras.backup`: where a run writing `output` checkpoints."""
    return f"{output}.backup"


def resume_checkpoint(backup, settings, resume, writer=True, say=print):
    """Applies the resume policy; returns the checkpoint's `Position`, or None.

    Args:
        backup: the checkpoint folder (`backup_folder(output)`).
        settings: JSON-able dict of the settings a resumed run must share
            (names as the command line's flags, with `_`).
        resume: whether the user asked to continue an interrupted run.
        writer: whether this process records the settings (process 0).
        say: called with the one message of a resumed run.

    Raises:
        ValueError: a checkpoint without `resume`, or one trained under
            other settings (each named with both values).

    Examples:
        >>> import tempfile
        >>> backup = tempfile.mkdtemp()
        >>> resume_checkpoint(backup, {"epochs": 2}, resume=False) is None
        True
        >>> sorted(os.listdir(backup))
        ['run-settings.json']
    """
    found = checkpoint_position(backup)
    if found and not resume:
        raise ValueError(
            f"{backup}/ holds the checkpoint of an interrupted run ({found}); "
            "pass --resume to continue it, or delete the folder."
        )
    if found:
        _check_same_settings(backup, settings)
    if writer:
        os.makedirs(backup, exist_ok=True)
        with saving.atomic_path(os.path.join(backup, SETTINGS_FILE)) as path:
            with open(path, "w") as file:
                json.dump(settings, file, indent=1)
    if resume:
        say(
            f"keras-simclr: resuming {found} from {found.path}"
            if found
            else f"keras-simclr: --resume: no checkpoint in {backup}/, starting afresh"
        )
    return found


def raise_if_preempted(saver):
    """Raises `callbacks.Preempted` when a signal stopped the `fit` that
    `saver` (a `PreemptionCheckpoint`) watched, naming its checkpoint."""
    if not saver.stopped_by:
        return
    name = signal.Signals(saver.stopped_by).name
    raise Preempted(
        saver.stopped_by,
        saver.checkpoint,
        f"stopped by {name} {saver.position}: "
        f"checkpoint {saver.checkpoint}; run the same command with --resume to "
        f"continue at the next step (exit status {saver.exit_status}).",
    )


def _check_same_settings(backup, settings):
    path = os.path.join(backup, SETTINGS_FILE)
    if not os.path.exists(path):  # a checkpoint of an older version
        return
    with open(path) as file:
        before = json.load(file)
    changed = [
        f"--{name.replace('_', '-')} {before[name]} (now {settings[name]})"
        for name in settings
        if name in before and before[name] != settings[name]
    ]
    if changed:
        raise ValueError(
            f"the checkpoint in {backup}/ was trained with "
            + ", ".join(changed)
            + ": resume with the checkpoint's settings, or delete the folder to "
            "start afresh."
        )


__all__ = [
    "SETTINGS_FILE",
    "backup_folder",
    "raise_if_preempted",
    "resume_checkpoint",
]
