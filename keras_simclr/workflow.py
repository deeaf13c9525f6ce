"""`pretrain`: the whole pretraining run, as `keras-simclr pretrain` does it.

Data → the paper's recipe (`keras_simclr.recipes`) → `fit` with a NaN guard
and an atomic checkpoint per epoch → save → linear probe and kNN beside the
same encoder at random initialisation. The command line parses its
arguments and calls this function; a Python user gets the same run, the
same checks and the same resume policy without copying it.

    import keras_simclr as ks
    run = ks.workflow.pretrain("photos/", image_size=96, epochs=100,
                               output="photos.keras")
    run.model, run.history, run.scores
"""

import contextlib
import dataclasses
import importlib.util
import shutil
import time
import typing
import warnings

import keras
import numpy as np

from keras_simclr import (
    backend,
    callbacks,
    datasets,
    distribute,
    recipes,
    report,
    saving,
)
from keras_simclr.choices import PRECISIONS
from keras_simclr.evaluation import evaluate_representation


@dataclasses.dataclass
class PretrainingRun:
    """What `pretrain` did.

    Attributes:
        model: the trained `SimCLRModel` (saved at `output`).
        history: `fit`'s `keras.callbacks.History`.
        splits: the `datasets.Splits` it trained and probed on.
        steps_per_epoch: planned steps per epoch (the schedule's).
        scores: `[(label, RepresentationScores)]`: the pretrained encoder and
            the same encoder at random initialisation; empty without a probe.
        writer: whether this process wrote the outputs (process 0 of a
            multi-process run; True for one process).
    """

    model: typing.Any
    history: typing.Any
    splits: typing.Any
    steps_per_epoch: int
    scores: list
    writer: bool = True


def pretrain(
    dataset="digits",
    *,
    output="simclr.keras",
    image_size=None,
    depth=18,
    width=0.25,
    epochs=12,
    batch_size=128,
    temperature=None,
    learning_rate=None,
    lr_scaling="sqrt",
    warmup_epochs=None,
    weight_decay=1e-6,
    crop_area=(0.08, 1.0),
    jitter_strength=None,
    blur_rate=None,
    resume=False,
    strategy="default",
    input_service=None,
    input_timeout=None,
    tensorboard=None,
    mixed_precision="float32",
    probe=True,
    seed=0,
    verbose=1,
    log=print,
):
    """Pretrains, saves and probes a SimCLR encoder: `keras-simclr pretrain`.

    Reference: Chen et al., 2020, Appendix B (the recipe, through
    `keras_simclr.recipes`). Before any work the output is checked (it must
    end in `.keras` and be writable) and locked against a second run on the
    same output. Each epoch is checkpointed atomically to `OUTPUT.backup/`;
    a run interrupted there is refused unless `resume=True`, which continues
    it. The checkpoint is removed once the model is saved.

    Several processes (`strategy="multi-worker"`) run the same call: each
    reads its share of a photo folder and all run the same steps; process 0
    (the chief on TensorFlow) alone locks and writes the output and the
    checkpoints and says what it does, and every process restores from the
    same `OUTPUT.backup/` (a folder all of them see).

    Args:
        dataset: "digits" (embedded, no network), "cifar10", "cifar100",
            "stl10", an image folder, TFRecords or an `.npz` of `x`, `y`
            (see `datasets.load`). Defaults to "digits".
        output: the `.keras` file to write. Defaults to "simclr.keras".
        image_size: view side; None for the dataset's.
        depth: ResNet depth (18, 34, 50, 101, 152). Defaults to 18.
        width: ResNet width multiplier. Defaults to 0.25.
        epochs: int. Defaults to 12.
        batch_size: global batch, in images (divisible by the replicas).
            Defaults to 128.
        temperature: NT-Xent temperature; None for the paper's (0.5 below
            64 px, else 0.1).
        learning_rate: base rate before batch scaling; None for the paper's.
        lr_scaling: "sqrt" (0.075 x sqrt(B)) or "linear" (0.3 x B / 256).
        warmup_epochs: None for 10% of `epochs`.
        weight_decay: LARS weight decay. Defaults to 1e-6.
        crop_area: (low, high) crop area. Defaults to (0.08, 1.0).
        jitter_strength: None for the paper's (0.5 below 64 px, else 1.0).
        blur_rate: None for the paper's (0 below 64 px, else 0.5).
        resume: continue from `OUTPUT.backup/`.
        strategy: "default", "mirrored", "multi-worker" or "tpu" (see
            `distribute.make_strategy`).
        input_service: None, or a tf.data service dispatcher
            (`grpc://HOST:PORT`, `keras-simclr input-service`) whose input
            workers decode the pretraining views of a photo folder or
            TFRecords (`datasets.input_service`).
        input_timeout: None (wait), or seconds without a batch from the
            input service after which the process ends with a message
            naming the checkpoint and `--resume` (a lost input worker that
            never comes back would otherwise hold the run: TensorFlow's
            service waits for it). Ends the process: for scripts that own
            it, as the command line (`--input-timeout`, default 600 s).
        tensorboard: None, or a folder for Keras's `TensorBoard` callback
            (the loss, contrastive accuracy, `projection_std`, the learning
            rate and, with labels, `knn_accuracy`) and, with labels, the
            features of up to 500 held-out images for its embedding
            projector (`callbacks.EmbeddingProjector`); written by the
            writing process. Needs `pip install 'keras-simclr[tensorboard]'`.
        mixed_precision: one of `PRECISIONS` (sets Keras's global policy).
        probe: linear probe and kNN at the end when the data has labels.
        seed: int >= 0 (Keras's global seed, shuffling, crops).
        verbose: `fit`'s progress: 0, 1 or 2.
        log: called with each message of the run (its set-up, resume,
            save); None for none. Defaults to `print`.

    Returns:
        A `PretrainingRun`.
    """
    settings = dict(locals())
    # Before any work: an output that cannot be written fails now, not after
    # training; a second run on the same output is refused.
    saving.check_output_path(output)
    if seed < 0:
        raise ValueError(f"`seed` (--seed) must be >= 0. Received: {seed}")
    if mixed_precision not in PRECISIONS:
        raise ValueError(
            f"`mixed_precision` must be one of {PRECISIONS}. Received: "
            f"{mixed_precision!r}"
        )
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError(
            "`tensorboard` (--tensorboard) needs the tensorboard package, which "
            "TensorFlow no longer installs: pip install 'keras-simclr[tensorboard]'"
        )
    # First: a multi-process JAX run must be joined before any computation.
    strategy = distribute.make_strategy(strategy)
    keras.utils.set_random_seed(seed)
    if mixed_precision != "float32":
        keras.mixed_precision.set_global_policy(mixed_precision)
    # One process of a run writes its outputs (and says what it does).
    writer = backend.current().is_writer(strategy)
    settings.update(
        strategy=strategy,
        writer=writer,
        log=(log or _silent) if writer else _silent,
    )
    del settings["mixed_precision"]
    with saving.output_lock(output) if writer else contextlib.nullcontext():
        return _train(**settings)


def _train(
    dataset,
    output,
    image_size,
    depth,
    width,
    epochs,
    batch_size,
    temperature,
    learning_rate,
    lr_scaling,
    warmup_epochs,
    weight_decay,
    crop_area,
    jitter_strength,
    blur_rate,
    resume,
    strategy,
    input_service,
    input_timeout,
    tensorboard,
    probe,
    seed,
    verbose,
    log,
    writer,
):
    say = log
    replicas = strategy.num_replicas_in_sync
    if batch_size < 2 or batch_size % replicas:
        raise ValueError(
            f"`batch_size` (--batch-size) {batch_size} must be >= 2 (NT-Xent needs negatives) "
            f"and divisible by the {replicas} replicas."
        )
    processes, _ = backend.current().process_share()
    if batch_size % processes:
        raise ValueError(
            f"`batch_size` (--batch-size) {batch_size} must be divisible by the "
            f"{processes} processes."
        )
    # Readers batch per process: each reads its share of the files.
    splits = datasets.load(
        dataset, image_size, batch_size // processes, seed, crop_area, input_service
    )
    if probe and splits.train is not None and splits.num_classes < 2:
        raise ValueError(
            f"the end-of-run probe needs at least 2 classes; {dataset} has "
            f"{splits.num_classes}. Add class sub-folders, or pass --no-probe."
        )
    image_size = image_size or splits.image_size
    data, steps_per_epoch = datasets.pretraining_batches(splits, batch_size, seed)
    overrides = {"crop_area": crop_area, "jitter_strength": jitter_strength}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if blur_rate is not None:
        overrides["blur_rate"] = blur_rate

    def build(seed):
        return recipes.simclr_model(
            depth,
            width,
            image_size,
            temperature=temperature,
            # A tf.distribute replica normalises its share only: synchronise.
            synchronized_batch_norm=replicas > 1
            and backend.current().REPLICAS_SPLIT_BATCH_NORM,
            seed=seed,
            **overrides,
        )

    with strategy.scope():
        model = build(seed)
        model.compile(
            optimizer=recipes.pretraining_optimizer(
                batch_size,
                steps_per_epoch * epochs,
                None if warmup_epochs is None else int(warmup_epochs * steps_per_epoch),
                learning_rate,
                lr_scaling,
                weight_decay,
            )
        )
    backup = f"{output}.backup"
    found = callbacks.latest_checkpoint(backup)
    if found and not resume:
        raise ValueError(
            f"{backup}/ holds the checkpoint of an interrupted run (after epoch "
            f"{found[0]}); pass --resume to continue it, or delete the folder."
        )
    recorded = _run_settings(
        dataset=dataset, image_size=image_size, depth=depth, width=width,
        epochs=epochs, batch_size=batch_size, temperature=model.temperature,
        learning_rate=learning_rate, lr_scaling=lr_scaling,
        warmup_epochs=warmup_epochs, weight_decay=weight_decay,
        crop_area=crop_area, jitter_strength=jitter_strength, blur_rate=blur_rate,
    )  # fmt: skip
    if found:
        _check_same_settings(backup, recorded)
    if writer:
        _record_settings(backup, recorded)
    if resume:
        say(
            f"keras-simclr: resuming after epoch {found[0]} from {found[1]}"
            if found
            else f"keras-simclr: --resume: no checkpoint in {backup}/, starting afresh"
        )
    params = sum(int(np.prod(w.shape)) for w in model.encoder.trainable_weights)
    say(
        f"keras-simclr: pretraining ResNet-{depth} x{width} "
        f"({params / 1e6:.2f} M parameters) on {dataset} at {image_size}px, "
        f"{epochs} epochs x {steps_per_epoch} steps, batch {batch_size}, "
        f"{replicas} replica(s), temperature {model.temperature}, "
        f"{backend.name()} backend"
    )
    start = time.time()
    with warnings.catch_warnings():
        # A photo reader's size is unknown until its first pass ends (files
        # may be skipped), and Keras says so at the end of epoch 1 with "Your
        # input ran out of data": noise for a run that plans its steps.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = _fit_or_say_lost(
            model,
            backup,
            data,
            epochs=epochs,
            callbacks=[
                callbacks.NaNGuard(),
                # The checkpoint is removed only once the model is saved (below).
                callbacks.AtomicBackupAndRestore(backup, delete_checkpoint=False),
                *_input_service_watch(input_service, say, input_timeout, backup),
                *_monitors(splits, epochs, probe, tensorboard, writer),
            ],
            verbose=verbose,
        )
    if writer:
        saving.save_model(model, output)
        shutil.rmtree(backup, ignore_errors=True)
    else:  # every process saves (a collective reads the weights)
        with saving.scratch_path("model.keras") as path:
            model.save(path)
    say(f"keras-simclr: trained in {time.time() - start:.0f} s; saved {output}")
    # Every process draws the report (its features are computed as the
    # probe's are, by every process of a run); the writer keeps it.
    page = report_path(output)
    target = contextlib.nullcontext(page) if writer else saving.scratch_path("r.html")
    with target as path:
        report.run_report(
            history, model, path, splits.unlabeled, splits.validation, title=output
        )
    say(f"keras-simclr: wrote the run's report to {page}")
    scores = []
    if probe and splits.train is None:
        say("keras-simclr: no labels (no class sub-folders): probe skipped")
    elif probe:
        scores.append(("SimCLR pretrained", probe_scores(model, splits)))
        scores.append(("random initialisation", probe_scores(build(seed + 1), splits)))
    return PretrainingRun(model, history, splits, steps_per_epoch, scores, writer)


def probe_scores(model, splits):
    """Linear probe and kNN (k = min(200, 20 per class)) of `model` on
    `splits.train` → `splits.validation`."""
    k = min(200, 20 * splits.num_classes)
    return evaluate_representation(model, splits.train, splits.validation, k=k)


# The settings a checkpoint's run was started with (`OUTPUT.backup/`):
# a run resumed with other ones would rebuild another model or schedule.
SETTINGS_FILE = "run-settings.json"


def report_path(output):
    """`m.keras` -> `m.report.html`: the run's report, beside the model."""
    return str(output).removesuffix(".keras") + ".report.html"


def _run_settings(**settings):
    """The run's settings as JSON values (tuples as lists)."""
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in settings.items()
    }


def _record_settings(backup, settings):
    import json
    import os

    os.makedirs(backup, exist_ok=True)
    with saving.atomic_path(os.path.join(backup, SETTINGS_FILE)) as path:
        with open(path, "w") as file:
            json.dump(settings, file, indent=1)


def _check_same_settings(backup, settings):
    """Refuses to resume a checkpoint under settings other than its run's,
    naming each one with both values."""
    import json
    import os

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


def _fit_or_say_lost(model, backup, data, **fit_arguments):
    """`model.fit`; a lost process of the run raises `LostProcessError`
    naming the checkpoint to resume from."""
    try:
        return model.fit(data, **fit_arguments)
    except Exception as error:
        if backend.current().process_share()[0] == 1 or not (
            backend.current().is_lost_process(error)
        ):
            raise
        found = callbacks.latest_checkpoint(backup)
        where = (
            f"the last complete checkpoint is {found[1]} (after epoch {found[0]})"
            if found
            else f"no epoch was complete ({backup}/ holds no checkpoint)"
        )
        first_line = next(iter(str(error).strip().splitlines()), "")
        raise distribute.LostProcessError(
            f"another process of this multi-worker run stopped ({type(error).__name__}: "
            f"{first_line[:200]}); {where}. Start every process again with the "
            "same command and --resume."
        ) from None


def _monitors(splits, epochs, probe, tensorboard, writer):
    """A kNN monitor on the probe's splits (4 measures a run at most), and
    TensorBoard (after it, so that it logs `knn_accuracy`) with the
    projector's features. Every process computes what needs the model (a
    collective in a multi-process run); the writer writes."""
    monitors = []
    if probe and splits.train is not None:
        k = min(200, 20 * splits.num_classes)
        every = max(1, epochs // 4)
        monitors.append(
            callbacks.KNNMonitor(splits.train, splits.validation, every=every, k=k)
        )
    if tensorboard and writer:
        monitors.append(keras.callbacks.TensorBoard(tensorboard))
    if tensorboard and splits.validation is not None:  # h of held-out images
        monitors.append(callbacks.EmbeddingProjector(splits.validation, tensorboard))
    return monitors


def _input_service_watch(input_service, say, input_timeout, backup):
    """A stall warning when the input service feeds the run; with
    `input_timeout`, the end of the process after that long."""
    if input_service is None:
        return []

    def stop(waited):
        import os
        import sys

        print(
            f"keras-simclr: error: no training batch for {waited:.0f} s from the "
            f"input service {input_service}: an input worker was lost and is not "
            f"back. Stopped; the last finished epoch is kept in {backup}. Run the "
            "same command with --resume: it goes on with the input workers there "
            "are (start more at any address).",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        # The main thread waits inside TensorFlow's iterator, which Python
        # cannot interrupt: the process ends here (the checkpoint is on disk).
        os._exit(1)

    return [
        callbacks.InputStallWarning(
            after=min(60, input_timeout or 60),
            cause=(
                f"The input service {input_service} may have lost an input "
                "worker: the run goes on once that worker is back at the same "
                "address"
                + (
                    f", or stops after {input_timeout:.0f} s without a batch"
                    if input_timeout
                    else ""
                )
                + " (docs/distributed.md, 'Input hosts')."
            ),
            say=say,
            give_up=input_timeout,
            on_give_up=stop if input_timeout else None,
        )
    ]


def _silent(*_):
    pass


__all__ = ["PRECISIONS", "PretrainingRun", "pretrain", "probe_scores"]
