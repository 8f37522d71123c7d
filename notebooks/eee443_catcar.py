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
# # EEE443 HW2 Q1: cat vs car with tanh MLPs, MSE and SGD
#
# Bilkent EEE443 homework 2, question 1, worked with tfnets: 32×32 grey images of cats (target −1) and cars (+1),
# every unit a tanh, mean-squared-error loss, mini-batch SGD. The handout's parts in order: (a) one hidden layer with
# its size, learning rate, batch size and initialisation chosen; (b) MSE against the mean classification error
# (MCE); (c) much smaller and much larger hidden layers; (d) two hidden layers; (e) momentum.
#
# `QUICK` (set `TFNETS_QUICK=1`) runs the app at its `--quick` scale (a few hundred real images, two epochs, a
# short sweep). Otherwise the cell runs the app's default configuration in the command line's `runs/` folder: after
# `python -m apps.catcar_mlp` it only reads and evaluates that run.

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

from IPython.display import Markdown, display

import nbsupport as nb
from apps import catcar_mlp
from apps.results import ORIGINALS

display(Markdown(nb.scale_note(QUICK)))

# %%
result = catcar_mlp.run(**nb.app_options(QUICK, "catcar_mlp"))
path = nb.run_folder(result, "catcar_mlp")
nb.section(path, "Preprocessing")

# %% [markdown]
# ## (a) One hidden layer: choosing N, the learning rate, the batch size and the initialisation
#
# A sweep picks the setting with the lowest validation MSE (a validation split carved out of the training images:
# the handout has none), then that network trains for the full number of epochs.

# %%
nb.section(path, "Part a")

# %% [markdown]
# ## (b) Does the MSE track the classification error?

# %%
nb.section(path, "Part b")
display(
    Markdown(
        "The handout asks whether the MSE and the MCE move together on the training and test sets and reports the "
        "curves, not a number; the table above gives their correlation for our run. " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ## (c) Much smaller and much larger hidden layers

# %%
nb.section(path, "Part c")

# %% [markdown]
# ## (d) Two hidden layers against one

# %%
nb.section(path, "Part d")

# %% [markdown]
# ## (e) Momentum against plain SGD (two hidden layers)

# %%
nb.section(path, "Part e")

# %% [markdown]
# ## Summary, the exported network, and test images it classifies

# %%
nb.section(path, "Summary")
nb.section(path, "Test images classified")
original = ORIGINALS["catcar"]
display(
    Markdown(
        f"The exported network (the lowest validation MSE of every part): test accuracy "
        f"**{100 * result.final['test_accuracy']:.2f} %**; the original report {original.text} ({original.source}). "
        + nb.scale_note(QUICK)
    )
)
