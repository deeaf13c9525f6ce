"""`pretrain`: the command's arguments → `keras_simclr.workflow.pretrain`."""

from keras_simclr.cli.evaluate import report


def pretrain(args):
    from keras_simclr import workflow
    from keras_simclr.settings import PretrainingSettings

    run = workflow.pretrain(PretrainingSettings.from_arguments(args))
    if run.scores and run.writer:  # one process of a run prints
        report(run.scores)
    return 0
