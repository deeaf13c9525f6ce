"""A picture report of a pretraining run: one self-contained HTML page.

Keras has no report of a run; TensorBoard needs a server. `run_report`
draws a chart per logged metric (loss, contrastive accuracy,
`projection_std`, `knn_accuracy`) and of the learning rate the schedule
gave (matplotlib: epochs and values on labelled axes),
a grid of the run's own views, and the nearest neighbours of a few held-out
images; the PNGs are embedded in the page, so it is one file to open in a
browser or attach to a message. `keras-simclr pretrain` writes it beside
the model (`OUTPUT.report.html`).
"""

import base64
import html
import os
import tempfile

import numpy as np
import tensorflow as tf

from keras_simclr import visualize
from keras_simclr.datasets.splits import first_images
from keras_simclr.evaluation.neighbours import nearest_neighbours
from keras_simclr.evaluation.projector import labelled_sample

AXIS_LABELS = {
    "loss": "NT-Xent loss",
    "contrastive_accuracy": "contrastive accuracy",
    "projection_std": "projection std x sqrt(d)",
    "knn_accuracy": "kNN accuracy",
    "learning_rate": "learning rate",
}


CURVE = "#1f77b4"  # matplotlib's first colour: (31, 119, 180)


def metric_figure(name, values, width=4.0, height=2.4, dpi=100):
    """A matplotlib `Figure` of a metric per epoch: epochs 1..N on x, the
    metric (`AXIS_LABELS`) on y, tick values and a grid; NaN values leave
    gaps. Drawn on an Agg canvas, not pyplot: no window, and the process's
    matplotlib backend and state are left as they are."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    values = np.asarray(values, "float64")
    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    epochs = np.arange(1, len(values) + 1)
    marker = "o" if len(values) <= 30 else None
    axes.plot(epochs, values, color=CURVE, marker=marker, markersize=3)
    axes.set_xlabel("epoch")
    axes.set_ylabel(AXIS_LABELS.get(name, name))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    if name == "learning_rate":
        axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    return figure


def metric_chart(name, values, **size):
    """`metric_figure` as a uint8 `(H, W, 3)` picture (400 x 240 by default).

    Examples:
        >>> metric_chart("loss", [1.0, 0.5, 0.25]).shape
        (240, 400, 3)
    """
    figure = metric_figure(name, values, **size)
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def learning_rates(model, history):
    """The optimizer's rate at the end of each epoch (its schedule evaluated
    at `epoch x steps`), or None."""
    rate = getattr(getattr(model, "optimizer", None), "learning_rate", None)
    steps = (getattr(history, "params", None) or {}).get("steps")
    epochs = len(next(iter(history.history.values()), []))
    schedule = getattr(model.optimizer, "_learning_rate", None)
    if rate is None or not steps or not epochs:
        return None
    if callable(schedule):
        return [float(schedule((epoch + 1) * steps)) for epoch in range(epochs)]
    return [float(np.asarray(rate))] * epochs


def _png(image):
    return base64.b64encode(tf.io.encode_png(image).numpy()).decode()


def _figure(title, image, caption=""):
    return (
        f"<figure><figcaption><b>{html.escape(title)}</b> {html.escape(caption)}"
        f'</figcaption><img src="data:image/png;base64,{_png(image)}"></figure>'
    )


def _neighbour_tiles(model, labelled, count=300, queries=4, k=6, seed=0):
    """Query and neighbour tiles of a few held-out images, and similarities."""
    images, _, features, tiles = labelled_sample(model, labelled, count, size=64)
    chosen = np.random.default_rng(seed).choice(
        len(images), min(queries, len(images)), False
    )
    k = min(k, len(images) - 1)
    indices, similarities = nearest_neighbours(
        features, features[chosen], k, exclude=list(chosen)
    )
    return tiles[chosen], tiles[indices], similarities


def run_report(
    history, model, path, unlabeled=None, labelled=None, title=None, settings=None
):
    """Writes the HTML report of a run (see the module docstring).

    Args:
        history: the `History` `fit` returned.
        model: the trained `SimCLRModel`.
        path: the `.html` file to write.
        unlabeled: the run's images (numpy or a dataset), for the views
            grid; None for none.
        labelled: held-out `(images, labels)` (or a dataset of them) for the
            neighbours grid; None for none.
        title: the page's title. Defaults to the file's name.
        settings: a line under the title, e.g. the run's command-line
            settings (`PretrainingSettings.describe`); None for none.

    Returns:
        The names of the sections written, in order.

    Examples:
        >>> import os, tempfile, keras
        >>> history = keras.callbacks.History()
        >>> history.history = {"loss": [3.0, 2.5, 2.2]}
        >>> path = os.path.join(tempfile.mkdtemp(), "run.html")
        >>> run_report(history, None, path)
        ['loss']
    """
    sections, parts = [], []
    logs = dict(history.history)
    if model is not None and "learning_rate" not in logs:
        rates = learning_rates(model, history)
        if rates:
            logs["learning_rate"] = rates
    first = ["loss", "contrastive_accuracy", "projection_std", "knn_accuracy"]
    names = [name for name in first if name in logs]
    names += sorted(
        name for name in logs if name not in first and name != "learning_rate"
    )
    names += ["learning_rate"] if "learning_rate" in logs else []
    for name in names:
        values = logs[name]
        if not values:
            continue
        caption = f"epoch 1: {values[0]:.4g} → epoch {len(values)}: {values[-1]:.4g}"
        caption += f" (min {np.nanmin(values):.4g}, max {np.nanmax(values):.4g})"
        parts.append(_figure(name, metric_chart(name, values), caption))
        sections.append(name)
    if model is not None and unlabeled is not None:
        images = first_images(unlabeled, 6)
        with tempfile.TemporaryDirectory() as scratch:
            grid = visualize.augmentation_grid(
                images, model.augmentation, os.path.join(scratch, "views.png"), views=5
            )
        factor = max(1, 64 // model.augmentation.image_size)  # small views, enlarged
        grid = grid.repeat(factor, axis=0).repeat(factor, axis=1)
        parts.append(_figure("views", grid, "each row: an image, then 5 of its views"))
        sections.append("views")
    if model is not None and labelled is not None:
        queries, neighbours, similarities = _neighbour_tiles(model, labelled)
        with tempfile.TemporaryDirectory() as scratch:
            grid = visualize.neighbours_grid(
                queries, neighbours, similarities, os.path.join(scratch, "near.png")
            )
        parts.append(
            _figure(
                "neighbours",
                grid,
                "each row: a held-out image, then its nearest by cosine of h "
                "(green bar: the similarity)",
            )
        )
        sections.append("neighbours")
    title = title or os.path.basename(str(path))
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        "</title><style>body{font-family:sans-serif;margin:24px}figure{display:"
        "inline-block;margin:8px;vertical-align:top}figcaption{font-size:13px;"
        "margin-bottom:4px}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        + (f"<p><code>{html.escape(settings)}</code></p>" if settings else "")
        + f"{''.join(parts)}</body></html>"
    )
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)
    return sections


def read_panels(path):
    """`{title: uint8 (H, W, 3) picture}` of a page `run_report` wrote, in
    page order (for a figure of its own, e.g. the README's).

    Examples:
        >>> import os, tempfile, keras
        >>> history = keras.callbacks.History()
        >>> history.history = {"loss": [3.0, 2.5]}
        >>> path = os.path.join(tempfile.mkdtemp(), "run.html")
        >>> _ = run_report(history, None, path)
        >>> {name: panel.shape for name, panel in read_panels(path).items()}
        {'loss': (240, 400, 3)}
    """
    import re

    with open(path, encoding="utf-8") as file:
        page = file.read()
    found = re.findall(
        r"<b>([^<]*)</b>[^<]*</figcaption><img src=\"data:image/png;base64,([^\"]*)\"",
        page,
    )
    return {
        html.unescape(title): tf.io.decode_png(
            base64.b64decode(data), channels=3
        ).numpy()
        for title, data in found
    }


__all__ = [
    "learning_rates",
    "metric_chart",
    "metric_figure",
    "read_panels",
    "run_report",
]
