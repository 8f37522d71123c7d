# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # ECE421 "Neural Networks": notMNIST letters A–J
#
# The University of Toronto ECE421 assignment, worked with tfnets. Part 1 builds a one-hidden-layer network whose
# backward pass is written by hand and trains it with full-batch gradient descent and momentum; part 2 trains a
# small CNN and studies L2 regularisation and dropout. At the end the trained CNN reads a letter drawn here.
#
# `QUICK` (set `TFNETS_QUICK=1`) runs everything at the apps' `--quick` scale: a few hundred real images and one or
# two epochs, to check that the notebook runs. Otherwise each cell runs the app's default configuration, in the same
# `runs/` folder as the command line: after `python -m apps.notmnist_mlp`, `python -m apps.notmnist_mlp
# --hidden-units 100,500,1000,2000` and `python -m apps.notmnist_cnn --study all`, this notebook only reads and
# evaluates those runs (seconds); without them it trains them (tens of minutes on a 2-core CPU).

# %% tags=["parameters"]
import os

QUICK = os.environ.get("TFNETS_QUICK") == "1"

# %%
import sys
from pathlib import Path

# The repository root, wherever this notebook was opened from (`make notebooks` builds it into build/notebooks/):
# the apps resolve `runs/` and `saved_models/` from there, as on the command line.
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "apps" / "__init__.py").is_file())
os.chdir(ROOT)
sys.path[:0] = [str(ROOT), str(ROOT / "notebooks")]

from tfnets.experiment.quiet import quiet_tensorflow

quiet_tensorflow()  # TensorFlow's C++ start-up lines hidden, as the apps do on the command line

import numpy as np
from IPython.display import Markdown, display

import nbsupport as nb
from apps import notmnist_cnn, notmnist_mlp, predict
from apps.results import ORIGINALS
from tfnets.nn import ops, reference_ops
from tfnets.nn.gradcheck import check_gradients

display(Markdown(nb.scale_note(QUICK)))

# %% [markdown]
# ## Part 1.1–1.2: the helper functions and their gradients
#
# The handout asks for ReLU, softmax, a layer's affine map, the average cross-entropy and its gradient, then the
# backpropagation formulas. In tfnets these are the ops in `tfnets.nn.ops`, each with a hand-written backward pass
# (`tf.custom_gradient`). Before training, check them: each gradient against central differences of the forward
# pass and against TensorFlow's autodiff of an independent plain implementation (`tfnets.nn.reference_ops`).

# %%
rng = np.random.default_rng(0)
x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
logits, labels = rng.standard_normal((4, 10)), rng.integers(0, 10, size=4)
checks = {
    "hidden layer relu(xW + b)": check_gradients(
        lambda x, w, b: ops.relu(ops.affine(x, w, b)),
        [x, w, b],
        lambda x, w, b: reference_ops.relu(reference_ops.affine(x, w, b)),
        names=["x", "W", "b"],
    ),
    "average softmax cross-entropy": check_gradients(
        ops.softmax_cross_entropy, [logits, labels], reference_ops.softmax_cross_entropy, names=["logits", "labels"]
    ),
}
nb.table(
    [
        {
            "function": name,
            "input": inp,
            "rel. error vs numeric": f"{e['numeric']:.1e}",
            "vs autodiff": f"{e['reference']:.1e}",
        }
        for name, report in checks.items()
        for inp, e in report.items()
    ]
)

# %% [markdown]
# Relative errors around 1e-8 or below (float64) mean the hand-written backward passes are the derivatives of
# their forward passes; a wrong formula gives errors near 1.

# %% [markdown]
# ## Part 1.3: learning — 1,000 hidden units, full-batch gradient descent with momentum, 200 epochs

# %%
mlp = notmnist_mlp.run(**nb.app_options(QUICK, "notmnist_mlp"))
nb.section(mlp.run_path, "Final metrics")
nb.section(mlp.run_path, "Learning curves")

# %%
original = ORIGINALS["notmnist_mlp"]
display(
    Markdown(
        f"Test accuracy: ours **{100 * mlp.final['test_accuracy']:.2f} %**; the original reports reached "
        f"{original.text} ({original.source}). {nb.scale_note(QUICK)}"
    )
)

# %% [markdown]
# ## Part 1.4: hyperparameters — the number of hidden units, and early stopping
#
# The handout compares 100, 500 and 2,000 hidden units (1,000 above); each size is one resumable trial.

# %%
units = notmnist_mlp.run(hidden_units=(100, 500, 1000, 2000), **nb.app_options(QUICK, "notmnist_mlp"))
# A study's result is its best trial (runs/notmnist_mlp/<run-id>/trials/<trial>/); the study's table and figures
# are in the app's run folder above it.
nb.section(nb.run_folder(units, "notmnist_mlp"), "hidden_units")

# %%
nb.section(mlp.run_path, "Early stopping")
display(
    Markdown(
        f"The handout asks where early stopping on the validation loss would stop; for the 1,000-unit net above that "
        f"is epoch {mlp.best['epoch']} of {len(mlp.history)} (test accuracy there "
        f"{100 * mlp.best['test_accuracy']:.2f} %, {100 * mlp.final['test_accuracy']:.2f} % at the last epoch). "
        f"{nb.scale_note(QUICK)}"
    )
)

# %% [markdown]
# ## Part 2.1–2.2: the CNN, trained with Adam for 50 epochs
#
# conv 3×3×32 → ReLU → batch norm → 2×2 max-pool → dense 784 → ReLU → dense 10, Xavier initialisation, Adam
# (learning rate 1e-4), batch 32. `--study all` trains this baseline, both studies of part 2.3 and our improved
# recipe (a comparison row, never instead of the assignment's).

# %%
# Quick: one epoch per network (eight networks: the baseline, six study values, the improved recipe).
cnn = notmnist_cnn.run(study="all", **nb.app_options(QUICK, "notmnist_cnn", epochs=1))
cnn.model.summary(line_length=100)
nb.section(cnn.run_path, "Final metrics")
nb.section(cnn.run_path, "Learning curves")

# %%
original = ORIGINALS["notmnist_cnn"]
display(
    Markdown(
        f"Test accuracy: ours **{100 * cnn.final['test_accuracy']:.2f} %**; the original reports reached "
        f"{original.text} ({original.source}). {nb.scale_note(QUICK)}"
    )
)

# %% [markdown]
# ## Part 2.3.1: L2 regularisation, λ ∈ {0.01, 0.1, 0.5}

# %%
nb.section(cnn.run_path, "l2 study")
display(
    Markdown(
        "The original reports give no per-λ number that this project records (only the baseline's range above); "
        "in our earlier full study mild L2 (λ = 0.01) moved test accuracy by less than a point (docs/notmnist_cnn.md). "
        + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ## Part 2.3.2: dropout after the 784-unit layer, keep probability p ∈ {0.9, 0.75, 0.5}

# %%
nb.section(cnn.run_path, "dropout study")
display(
    Markdown(
        "As for L2, the original reports give no per-p number that this project records; in our earlier full study "
        "dropout moved test accuracy by less than a point (docs/notmnist_cnn.md). " + nb.scale_note(QUICK)
    )
)

# %%
improved = cnn.parts["improved"]
display(
    Markdown(
        f"Our improved recipe (64 filters, dropout p = 0.5, small shifts and rotations, cosine decay): test accuracy "
        f"**{100 * improved.final['test_accuracy']:.2f} %** against the assignment recipe's "
        f"{100 * cnn.final['test_accuracy']:.2f} %. The original handout asks only for the two studies above and "
        f"reports no improved recipe. {nb.scale_note(QUICK)}"
    )
)

# %% [markdown]
# ## Your own letter
#
# Draw a letter (here an "A" in strokes, dark on a white page, as on paper) and let the exported CNN read it.
# `apps.predict` makes the drawing look like the training images: greyscale, the glyph cropped and framed at
# 28×28, and inverted to light on dark as notMNIST is.

# %%
import matplotlib

matplotlib.use("Agg")  # the figure is rendered to PNG by nb.show; no display is needed
import matplotlib.pyplot as plt
from PIL import Image, ImageDraw

page = Image.new("L", (200, 200), 255)
pen = ImageDraw.Draw(page)
pen.line([(40, 175), (100, 25), (160, 175)], fill=0, width=18, joint="curve")
pen.line([(65, 115), (135, 115)], fill=0, width=16)
drawn = Path(os.environ.get("TFNETS_NOTEBOOK_OUT", "runs")) / "my_letter_A.png"
drawn.parent.mkdir(parents=True, exist_ok=True)
page.save(drawn)

fig, ax = plt.subplots(figsize=(2, 2))
ax.imshow(np.asarray(page), cmap="gray", vmin=0, vmax=255)
ax.set_title("my letter")
ax.axis("off")
nb.show(fig)
_ = predict.main([str(cnn.export_path), str(drawn), "--top-k", "3"])

# %% [markdown]
# The handout has no number for this; with the full run the CNN names the drawn "A" first. In quick mode the
# network has seen one epoch of a few hundred images, so its answer may well be wrong.
