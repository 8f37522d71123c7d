"""The figures of `apps.dl_principles`: each part's loss curves and the decision boundaries of its networks.

Not an app (leading underscore): helpers of `apps.dl_principles`, which owns the run folder's layout.
"""

import numpy as np

from tfnets.experiment.plots import plot_overlay, pyplot, save_figure


def plot_boundaries(panels, x, y, path, extent=None):
    """Decision boundaries: `panels` is [(title, model)], each drawn as P(class 1) over the plane with the points."""
    plt = pyplot()
    lo, hi = extent if extent is not None else (x.min() - 0.5, x.max() + 0.5)
    grid = np.linspace(lo, hi, 150, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    plane = np.stack([gx.ravel(), gy.ravel()], axis=1)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    for ax, (title, model) in zip(axes[0], panels):
        p = model.predict(plane, verbose=0, batch_size=len(plane)).reshape(gx.shape)
        ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.6)
        ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1)
        labels = np.ravel(y) > 0.5
        ax.scatter(x[labels, 0], x[labels, 1], s=8, c="tab:blue", edgecolors="w", linewidths=0.3)
        ax.scatter(x[~labels, 0], x[~labels, 1], s=8, c="tab:orange", edgecolors="w", linewidths=0.3)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, path)


def add_figures(exp, part, histories, panels, data, extent=None):
    """Part `part`'s loss curves (`histories` by label) and decision boundaries (`panels`) into the run folder and
    its report."""
    curves = plot_overlay(
        histories,
        exp.run.path / f"part_{part}_test_loss.png",
        metrics=("test_loss", "loss"),
        title=f"Part {part}: test and training loss",
    )
    boundaries = plot_boundaries(panels, data.x_test, data.y_test, exp.run.path / f"part_{part}_boundaries.png", extent)
    exp.report.add_image(f"Part {part}: loss curves", curves)
    exp.report.add_image(f"Part {part}: decision boundaries (test points)", boundaries)
