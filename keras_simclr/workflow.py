"""`pretrain`: the whole pretraining run, as `keras-simclr pretrain` does it.

Data → the paper's recipe (`keras_simclr.recipes`) → `fit` with a NaN guard
and atomic checkpoints that survive preemption → save → linear probe and kNN beside the
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

import keras
import numpy as np

from keras_simclr import (
    backend,
    callbacks,
    datasets,
    distribute,
    recipes,
    report,
    resuming,
    saving,
)
from keras_simclr.batching import plan_batch, suggest_chunk_size
from keras_simclr.choices import PRECISIONS
from keras_simclr.evaluation import evaluate_representation
from keras_simclr.settings import PretrainingSettings


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


def pretrain(settings="digits", /, *, log=print, **changes):
    """Pretrains, saves and probes a SimCLR encoder: `keras-simclr pretrain`.

    Reference: Chen et al., 2020, Appendix B (the recipe, through
    `keras_simclr.recipes`). Before any work the output is checked (it must
    end in `.keras` and be writable) and locked against a second run on the
    same output. Each epoch, every `checkpoint_every` steps and the step a
    SIGTERM or SIGINT stops at are checkpointed atomically to
    `OUTPUT.backup/` (`callbacks.PreemptionCheckpoint`; a signal raises
    `callbacks.Preempted` once the checkpoint is written); a run
    interrupted there is refused unless `resume=True`, which continues it at
    the next step. The checkpoint is removed once the model is saved.

    Several processes (`strategy="multi-worker"`) run the same call: each
    reads its share of a photo folder and all run the same steps; process 0
    (the chief on TensorFlow) alone locks and writes the output and the
    checkpoints and says what it does, and every process restores from the
    same `OUTPUT.backup/` (a folder all of them see).

    The run is five stages: `plan` (data, batch, steps), `build` (the recipe
    under the strategy), `resume` (checkpoint and settings check), `fit`
    (NaN guard, checkpoints, input watch, monitors) and `finish` (save,
    report, probe).

    Args:
        settings: a `PretrainingSettings`, or the dataset (a name, folder,
            TFRecords or `.npz`; see `datasets.load`) with the other
            settings as keyword arguments. Defaults to "digits".
        log: called with each message of the run (its set-up, resume,
            save); None for none. Defaults to `print`.
        **changes: `PretrainingSettings` fields (`output`, `epochs`,
            `batch_size`, ...: each field's help says what it does), applied
            over `settings`.

    Returns:
        A `PretrainingRun`.
    """
    if not isinstance(settings, PretrainingSettings):
        settings = PretrainingSettings(dataset=settings)
    settings = settings.replace(**changes)
    # Before any work: an output that cannot be written fails now, not after
    # training; a second run on the same output is refused.
    saving.check_output_path(settings.output)
    if settings.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError(
            "`tensorboard` (--tensorboard) needs the tensorboard package, which "
            "TensorFlow no longer installs: pip install 'keras-simclr[tensorboard]'"
        )
    # First: a multi-process JAX run must be joined before any computation.
    strategy = distribute.make_strategy(settings.strategy)
    keras.utils.set_random_seed(settings.seed)
    if settings.mixed_precision != "float32":
        keras.mixed_precision.set_global_policy(settings.mixed_precision)
    # One process of a run writes its outputs (and says what it does).
    writer = backend.current().is_writer(strategy)
    say = (log or _silent) if writer else _silent
    lock = saving.output_lock(settings.output) if writer else contextlib.nullcontext()
    with lock:
        plan = plan_run(settings, strategy)
        model = build(plan, settings.seed)
        resume(plan, model, say, writer)
        history = fit(plan, model, say, writer)
        return finish(plan, model, history, say, writer)


@dataclasses.dataclass
class RunPlan:
    """What `plan_run` decided: the settings, the strategy, the data and
    its steps."""

    settings: PretrainingSettings
    strategy: typing.Any
    splits: typing.Any
    data: typing.Any
    steps_per_epoch: int
    image_size: int

    @property
    def backup(self):
        return resuming.backup_folder(self.settings.output)


def plan_run(settings, strategy):
    """Stage 1: the batch over processes and replicas, the data and the
    steps per epoch."""
    replicas = strategy.num_replicas_in_sync
    processes, _ = backend.current().process_share()
    per_process = plan_batch(
        settings.batch_size, processes, replicas, settings.chunk_size
    )
    # Readers batch per process: each reads its share of the files.
    splits = datasets.load(
        settings.dataset,
        settings.image_size,
        per_process,
        settings.seed,
        settings.crop_area,
        settings.input_service,
    )
    if settings.probe and splits.train is not None and splits.num_classes < 2:
        raise ValueError(
            f"the end-of-run probe needs at least 2 classes; {settings.dataset} has "
            f"{splits.num_classes}. Add class sub-folders, or pass --no-probe."
        )
    data, steps = datasets.pretraining_batches(
        splits, settings.batch_size, settings.seed
    )
    image_size = settings.image_size or splits.image_size
    return RunPlan(settings, strategy, splits, data, steps, image_size)


def build(plan, seed):
    """Stage 2: the paper's model (`recipes.simclr_model`) and its optimizer,
    under the strategy; compiled."""
    s = plan.settings
    overrides = {
        key: value
        for key, value in dict(
            crop_area=s.crop_area,
            jitter_strength=s.jitter_strength,
            blur_rate=s.blur_rate,
        ).items()
        if value is not None
    }
    replicas = plan.strategy.num_replicas_in_sync
    with plan.strategy.scope():
        model = recipes.simclr_model(
            s.depth,
            s.width,
            plan.image_size,
            temperature=s.temperature,
            # A tf.distribute replica normalises its share only: synchronise.
            synchronized_batch_norm=replicas > 1
            and backend.current().REPLICAS_SPLIT_BATCH_NORM,
            seed=seed,
            chunk_size=s.chunk_size,
            **overrides,
        )
        steps = plan.steps_per_epoch
        warmup = s.warmup_epochs
        model.compile(
            optimizer=recipes.pretraining_optimizer(
                s.batch_size,
                steps * s.epochs,
                None if warmup is None else int(warmup * steps),
                s.learning_rate,
                s.lr_scaling,
                s.weight_decay,
            )
        )
    return model


def resume(plan, model, say, writer):
    """Stage 3: refuses a checkpoint without `resume` or under other
    settings; records this run's settings beside its checkpoints."""
    s = plan.settings
    recorded = s.resumed(image_size=plan.image_size, temperature=model.temperature)
    return resuming.resume_checkpoint(plan.backup, recorded, s.resume, writer, say)


def fit(plan, model, say, writer):
    """Stage 4: `fit` with a NaN guard, checkpoints that survive preemption, the
    input service's watch and the monitors."""
    s = plan.settings
    params = sum(int(np.prod(w.shape)) for w in model.encoder.trainable_weights)
    say(
        f"keras-simclr: pretraining ResNet-{s.depth} x{s.width} "
        f"({params / 1e6:.2f} M parameters) on {s.dataset} at {plan.image_size}px, "
        f"{s.epochs} epochs x {plan.steps_per_epoch} steps, batch {s.batch_size}, "
        f"{plan.strategy.num_replicas_in_sync} replica(s), temperature "
        f"{model.temperature}, {backend.name()} backend"
    )
    say(f"keras-simclr: settings: {s.describe()}")
    timeout = s.input_timeout if s.input_service else None
    # The checkpoint is removed only once the model is saved.
    saver = callbacks.PreemptionCheckpoint(
        plan.backup, every_steps=s.checkpoint_every, delete_checkpoint=False
    )
    start = time.time()
    history = _fit_or_say_lost(
        model,
        plan,
        say,
        epochs=s.epochs,
        callbacks=[
            callbacks.NaNGuard(),
            saver,
            *_input_service_watch(s.input_service, say, timeout, plan.backup),
            *_monitors(plan.splits, s.epochs, s.probe, s.tensorboard, writer),
        ],
        verbose=s.verbose,
    )
    resuming.raise_if_preempted(saver)
    say(f"keras-simclr: trained in {time.time() - start:.0f} s")
    return history


def finish(plan, model, history, say, writer):
    """Stage 5: save (the writer; the others to scratch, for the collective
    that reads the weights), the report, and the probe beside the same
    encoder at random initialisation."""
    s, splits, output = plan.settings, plan.splits, plan.settings.output
    if writer:
        saving.save_model(model, output)
        shutil.rmtree(plan.backup, ignore_errors=True)
    else:
        with saving.scratch_path("model.keras") as path:
            model.save(path)
    say(f"keras-simclr: saved {output}")
    # Every process draws the report (its features are computed as the
    # probe's are, by every process of a run); the writer keeps it.
    page = report_path(output)
    target = contextlib.nullcontext(page) if writer else saving.scratch_path("r.html")
    with target as path:
        report.run_report(
            history,
            model,
            path,
            splits.unlabeled,
            splits.validation,
            title=output,
            settings=f"keras-simclr pretrain {s.describe()}",
        )
    say(f"keras-simclr: wrote the run's report to {page}")
    scores = []
    if s.probe and splits.train is None:
        say("keras-simclr: no labels (no class sub-folders): probe skipped")
    elif s.probe:
        scores.append(("SimCLR pretrained", probe_scores(model, splits)))
        scores.append(
            ("random initialisation", probe_scores(build(plan, s.seed + 1), splits))
        )
    return PretrainingRun(model, history, splits, plan.steps_per_epoch, scores, writer)


def probe_scores(model, splits):
    """Linear probe and kNN (k = min(200, 20 per class)) of `model` on
    `splits.train` → `splits.validation`."""
    k = min(200, 20 * splits.num_classes)
    return evaluate_representation(model, splits.train, splits.validation, k=k)


def report_path(output):
    """`m.keras` -> `m.report.html`: the run's report, beside the model."""
    return str(output).removesuffix(".keras") + ".report.html"


def _fit_or_say_lost(model, plan, say, **fit_arguments):
    """`model.fit`; a lost process of the run raises `LostProcessError`
    naming the checkpoint to resume from; a step out of memory says which
    chunk size to try."""
    backup = plan.backup
    active = backend.current()
    try:
        return model.fit(plan.data, **fit_arguments)
    except Exception as error:
        if active.is_out_of_memory(error):
            batch, chunk_size = plan.settings.batch_size, plan.settings.chunk_size
            per_device = batch // plan.strategy.num_replicas_in_sync
            now = f", chunks of {chunk_size}" if chunk_size else ""
            chunk = suggest_chunk_size(per_device, chunk_size)
            say(
                f"keras-simclr: the step ran out of memory at batch {batch} "
                f"({per_device} images per device{now}): try --chunk-size {chunk} "
                f"(the same loss and gradient, {chunk} images per encoder pass), "
                "then --resume."
            )
            raise
        if active.process_share()[0] == 1 or not active.is_lost_process(error):
            raise
        found = callbacks.checkpoint_position(backup)
        where = (
            f"the last complete checkpoint is {found.path} ({found})"
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


__all__ = [
    "PRECISIONS",
    "PretrainingRun",
    "PretrainingSettings",
    "RunPlan",
    "build",
    "finish",
    "fit",
    "plan_run",
    "pretrain",
    "probe_scores",
    "resume",
]
