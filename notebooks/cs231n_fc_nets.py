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
# # CS231n assignment 2: fully-connected nets on CIFAR-10
#
# Stanford CS231n's `FullyConnectedNets`, `BatchNormalization` and `Dropout` notebooks (as assigned in Bilkent
# EEE443 homework 2, question 3), worked with tfnets: every layer's backward pass is written by hand
# (`tfnets.nn.ops`), the nets are `tfnets.nn.models.FullyConnectedNet` trained by `tfnets.nn.solver.Solver`, and
# `apps.cifar_fc_net` runs the assignment's experiments. In the handout's order: gradient checks of each layer and of
# the whole net, overfitting a small set, the update rules compared, batch and layer normalisation, dropout, and the
# best net we can train.
#
# `QUICK` (set `TFNETS_QUICK=1`) runs the app at its `--quick` scale (a few hundred real images, smoke-test sizes
# of every part, a 64-32 "best" net from two sweep trials). Otherwise the cell runs the app's default
# configuration in the command line's `runs/` folder: after `python -m apps.cifar_fc_net` it only reads and
# evaluates that run.

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

import matplotlib
import numpy as np
from IPython.display import Markdown, display

matplotlib.use("Agg")  # figures are rendered to PNG by nb.show; no display is needed
import matplotlib.pyplot as plt

import nbsupport as nb
from apps import cifar_fc_net
from apps.results import ORIGINALS
from tfnets.nn import ops, reference_ops
from tfnets.nn.gradcheck import check_gradients

display(Markdown(nb.scale_note(QUICK)))

# %% [markdown]
# ## Gradient checks, one layer at a time
#
# Each hand-written backward pass against central differences of its forward pass (float64) and against TensorFlow
# autodiff of an independent plain implementation (`tfnets.nn.reference_ops`). Dropout has no plain twin with the
# same random mask, so it is checked against numbers only (its mask is fixed by a seed).

# %%
rng = np.random.default_rng(0)
N, D, H, C = 4, 5, 6, 3
x, w, b = rng.standard_normal((N, D)), rng.standard_normal((D, H)), rng.standard_normal(H)
h = rng.standard_normal((N, H))
gamma, beta = rng.uniform(0.5, 1.5, H), rng.standard_normal(H)
scores, labels = rng.standard_normal((N, C)), rng.integers(0, C, size=N)
zeros, ones = np.zeros(H), np.ones(H)
layers = {
    "affine": (ops.affine, [x, w, b], reference_ops.affine, ["x", "w", "b"]),
    "relu": (ops.relu, [h], reference_ops.relu, ["x"]),
    "batch norm (training)": (
        lambda x, g, b: ops.batch_norm(x, g, b, zeros, ones, training=True)[0],
        [h, gamma, beta],
        lambda x, g, b: reference_ops.batch_norm_train(x, g, b)[0],
        ["x", "gamma", "beta"],
    ),
    "layer norm": (ops.layer_norm, [h, gamma, beta], reference_ops.layer_norm, ["x", "gamma", "beta"]),
    "dropout (rate 0.5)": (lambda x: ops.dropout(x, 0.5, training=True, seed=7), [h], None, ["x"]),
    "softmax loss": (ops.softmax_cross_entropy, [scores, labels], reference_ops.softmax_cross_entropy, ["scores", "y"]),
    "SVM loss": (ops.svm_loss, [scores, labels], reference_ops.svm_loss, ["scores", "y"]),
}
rows = []
for layer, (forward, inputs, reference, names) in layers.items():
    for name, errors in check_gradients(forward, inputs, reference, names=names).items():
        rows.append({"layer": layer, "input": name, "numeric": errors["numeric"], "reference": errors["reference"]})
nb.table(
    [
        {
            **row,
            "numeric": f"{row['numeric']:.1e}",
            "reference": "-" if row["reference"] is None else f"{row['reference']:.1e}",
        }
        for row in rows
    ],
    ["layer", "input", "numeric", "reference"],
)
fig, ax = plt.subplots(figsize=(8, 3))
labels_ = [f"{r['layer']}: {r['input']}" for r in rows]
ax.barh(range(len(rows))[::-1], [max(r["numeric"], 1e-16) for r in rows])
ax.set_xscale("log")
ax.set_yticks(range(len(rows))[::-1], labels_, fontsize=7)
ax.axvline(1e-7, color="grey", linestyle="--", linewidth=1)
ax.set_xlabel("relative error vs central differences (log scale; dashed: 1e-7)")
nb.show(fig)

# %%
display(
    Markdown(
        f"Largest relative error against central differences: **{max(r['numeric'] for r in rows):.1e}**; CS231n "
        "expects about 1e-7 or less for a correct layer and reports no single number."
    )
)

# %% [markdown]
# ## The whole net: gradient check and initial loss
#
# One call of the app runs every part below; the next cells show them in the handout's order.

# %%
options = nb.app_options(QUICK, "cifar_fc_net", hidden="64-32", batch_size=50, max_trials=2)
result = cifar_fc_net.run(**options)
path = nb.run_folder(result, "cifar_fc_net")
nb.section(path, "Gradient check")
display(
    Markdown(
        "CS231n expects relative errors of 1e-6 or less and an initial loss near ln 10 ≈ 2.303 with small weights; "
        "the table and its note give ours. " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ## Overfitting 50 images with 3- and 5-layer nets

# %%
nb.section(path, "Overfitting 50 images")
display(
    Markdown(
        "CS231n asks for 100 % training accuracy on 50 images within 20 epochs and says the 5-layer net is the more "
        "sensitive to the initialisation scale; the table lists which settings got there. " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ## Update rules: SGD, SGD with momentum, RMSprop, Adam

# %%
nb.section(path, "Update rules")
display(
    Markdown(
        "CS231n expects momentum, RMSprop and Adam to train faster than plain SGD (no number); the curves show ours. "
        + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ## Batch and layer normalisation: training speed and sensitivity to the weight scale

# %%
nb.section(path, "Normalisation")
display(
    Markdown(
        "CS231n expects normalised nets to train faster and to stay trainable over a wider range of initial weight "
        "scales (no number); the curves and the weight-scale sweep show ours. " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ## Dropout: keep ratio 1 against 0.25

# %%
nb.section(path, "Dropout")
display(
    Markdown(
        "CS231n expects dropout to narrow the gap between training and validation accuracy; in our full run its "
        "validation gain was within noise (docs/cifar_fc_net.md). " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ## The best net: a short sweep, then a long training of its winner (exported)

# %%
nb.section(path, "Best net")
original = ORIGINALS["cifar"]
display(
    Markdown(
        f"Test accuracy of the exported best net: **{100 * result.final['test_accuracy']:.2f} %**; the original report "
        f"{original.text} ({original.source}). The README's number comes from `python -m apps.cifar_fc_net --part best "
        f"--epochs 60 --trial-epochs 2 --sweep learning_rate=1e-3 --sweep keep=0.7,0.85`, a longer run than the "
        f"app's defaults used here. " + nb.scale_note(QUICK)
    )
)
