"""Figures every app draws: learning curves, overlays of several runs, image grids. Written atomically.

Matplotlib is imported on the first figure (`pyplot()`), not with this module: apps import it at the top and
must still answer `--help` without loading it.
"""

import numpy as np

from tfnets.atomic import atomic_path

SPLIT_STYLE = {"": ("train", "-"), "val_": ("valid", "--"), "test_": ("test", ":")}


def pyplot():
    """`matplotlib.pyplot` on the Agg backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def metric_names(history):
    """Base metric names in a history (`loss`, `accuracy`, ...), loss first."""
    keys = {k for row in history for k in row}
    names = sorted({k for k in keys if not k.startswith(("val_", "test_")) and k not in ("epoch", "time_s")})
    return sorted(names, key=lambda n: (n != "loss", n))


def label_axes(ax, xlabel, ylabel, legend=True):
    """The house style of every panel: axis labels, a light grid, a small legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize="small")


def plot_curves(history, path, title=""):
    """One panel per metric; train/valid/test as three lines on each panel."""
    names = metric_names(history)
    fig, axes = pyplot().subplots(1, len(names), figsize=(5 * len(names), 3.8), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, name in zip(axes[0], names):
        for prefix, (label, style) in SPLIT_STYLE.items():
            key = prefix + name
            if any(key in row for row in history):
                ax.plot(epochs, [row.get(key, np.nan) for row in history], style, label=label)
        label_axes(ax, "epoch", name)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_overlay(histories, path, metrics=("val_loss", "val_accuracy"), title=""):
    """Several runs' curves on shared axes: `histories` maps a label to a history (list of rows)."""
    fig, axes = pyplot().subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, history in histories.items():
            if any(metric in row for row in history):
                ax.plot([r["epoch"] for r in history], [r.get(metric, np.nan) for r in history], label=str(label))
        label_axes(ax, "epoch", metric)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_xy(series, path, xlabel, ylabel, title="", logx=False):
    """Line plot of `{label: (xs, ys)}`."""
    fig, ax = pyplot().subplots(figsize=(5.5, 3.8))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, "o-", label=str(label))
    if logx:
        ax.set_xscale("log")
    label_axes(ax, xlabel, ylabel)
    ax.set_title(title)
    return save_figure(fig, path)


def plot_image_grid(images, titles, path, cols=8, cmap="gray"):
    """A grid of images (N, H, W) or (N, H, W, 3) with a title under each."""
    rows = max(1, int(np.ceil(len(images) / cols)))
    fig, axes = pyplot().subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, title in zip(axes.ravel(), images, titles):
        ax.imshow(np.squeeze(image), cmap=cmap if np.ndim(np.squeeze(image)) == 2 else None)
        ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def plot_search(trace, numeric, path, objective, maximise=False, title=""):
    """A search's figure: the objective of every trial in order with the best so far, then one panel per entry
    of `numeric`, `{name: ([(value, objective), ...], log_x)}`, the objective against that hyperparameter.

    `trace`: `[(trial number, objective or None)]`; None (a failed or unfinished trial) is left out."""
    fig, axes = pyplot().subplots(1, 1 + len(numeric), figsize=(5 * (1 + len(numeric)), 3.8), squeeze=False)
    ax = axes[0][0]
    done = [(n, s) for n, s in trace if s is not None and np.isfinite(s)]
    if done:
        numbers, scores = zip(*done)
        best = (np.maximum if maximise else np.minimum).accumulate(np.array(scores, dtype=float))
        ax.plot(numbers, scores, "o", alpha=0.6, label="trial")
        ax.step(numbers, best, where="post", label="best so far")
    label_axes(ax, "trial", objective, legend=bool(done))
    for ax, (name, (points, log)) in zip(axes[0][1:], numeric.items()):
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, "o", alpha=0.7)
        if log:
            ax.set_xscale("log")
        label_axes(ax, name, objective, legend=False)
    fig.suptitle(title)
    return save_figure(fig, path)
