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
# # CS155 deep learning: principles on toy data, depth vs width, the MNIST CNN
#
# The Caltech CS155 problem set, worked with tfnets: five deep-learning principles seen on TensorFlow-Playground
# toy sets (initialisation, activations, example order, OR and XOR), MLPs of a fixed hidden-unit budget split over
# one to four layers, and a small CNN with its arithmetic, a dropout study and a network under 100k parameters.
#
# `QUICK` (set `TFNETS_QUICK=1`) runs everything at the apps' `--quick` scale (a few hundred real images, one or two
# epochs) and, to stay short, only the 100-unit budget at depths 1 and 2 and three dropout rates. Otherwise each cell
# runs the app's default configuration in the command line's `runs/` folder: after `python -m apps.dl_principles`,
# `python -m apps.mnist_depth_width` and `python -m apps.mnist_cnn` it only reads and evaluates those runs.

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
from apps import dl_principles, mnist_cnn, mnist_depth_width
from apps.results import ORIGINALS

display(Markdown(nb.scale_note(QUICK)))

# %% [markdown]
# ## Problem 1: deep-learning principles (Playground toy data)
#
# A 2 → 4 → 2 → 1 network, binary cross-entropy, SGD with batch 10 (Playground's default); each part trains its
# networks, and the app's report has the numbers and figures the handout asks for.

# %%
principles = dl_principles.run(**nb.app_options(QUICK, "dl_principles"))
errors = {name: value for name, (value, _) in dl_principles.headlines(principles.run_path).items()}

# %% [markdown]
# ### A. ReLU network: random vs all-zero initialisation

# %%
nb.section(principles.run_path, "Part A")
display(
    Markdown(
        f"The zero-initialised ReLU net ends at test error **{errors['zero_init_relu_test_error']:.3f}**: every hidden "
        "gradient is 0 at step 0 (table), so it never learns. The handout (worked in the Playground) asks for this "
        "explanation and reports no number. " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ### B. Sigmoid network: random vs all-zero initialisation

# %%
nb.section(principles.run_path, "Part B")
display(
    Markdown(
        "With sigmoid units both initialisations learn, the zero one slower and with identical units in each layer "
        "(their spread stays 0); the handout expects exactly that and gives no number. " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ### C. Example order with batch size 1: all negatives, then all positives

# %%
nb.section(principles.run_path, "Part C")
display(
    Markdown(
        f"Sorted order ends at test error **{errors['sorted_order_test_error']:.3f}**; the handout expects the sorted "
        "order to kill ReLU units and reports no number; our full run saw it ruin the error rather than the units "
        "(docs/dl_principles.md). " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ### D. OR with no hidden layer, weights set by hand

# %%
nb.section(principles.run_path, "Part D")

# %% [markdown]
# ### E. XOR: no hidden layer, and the smallest ReLU network that computes it

# %%
nb.section(principles.run_path, "Part E")
display(
    Markdown(
        "No hidden layer gets at most 3 of the 4 XOR points right; one hidden layer of 2 ReLU units computes it, "
        "the answer the handout asks for (it has no measured number)."
    )
)

# %% [markdown]
# ## Problem 2: depth vs width on MNIST
#
# For each budget of hidden units (100, 200, 1,000) the app trains every split over one to four layers and keeps
# the one with the best validation accuracy (test accuracy reported only).

# %%
depth = mnist_depth_width.run(**nb.app_options(QUICK, "mnist_depth_width", budgets=(100,), max_depth=2))
depth_path = nb.run_folder(depth, "mnist_depth_width")
nb.section(depth_path, "Depth vs width")
nb.section(depth_path, "Test accuracy vs depth")
nb.section(depth_path, "Best architecture per budget")

# %%
found = mnist_depth_width.headlines(depth_path)
lines = []
for budget in (100, 200, 1000):
    original = ORIGINALS[f"depth_width_{budget}"]
    hit = found.get(f"budget_{budget}_test_accuracy")
    ours = "not run here" if hit is None else f"**{100 * hit[0]:.2f} %**"
    lines.append(f"- ≤ {budget:,} hidden units: ours {ours}; the original report {original.text} ({original.source}).")
display(Markdown("\n".join(lines) + "\n\n" + nb.scale_note(QUICK)))

# %% [markdown]
# ## Problem 3: convolutional networks on MNIST
#
# ### The arithmetic: parameters and output shape of a convolution, average and max pooling of corner patterns

# %%
cnn = mnist_cnn.run(**nb.app_options(QUICK, "mnist_cnn", dropout_rates=(0.0, 0.3, 0.6), epochs=1))
cnn_path = nb.run_folder(cnn, "mnist_cnn")
nb.section(cnn_path, "CNN arithmetic")

# %% [markdown]
# ### The dropout study: one epoch per rate

# %%
nb.section(cnn_path, "Dropout study")
at_zero = mnist_cnn.headlines(cnn_path).get("dropout_0_test_accuracy")
original = ORIGINALS["mnist_cnn_dropout"]
display(
    Markdown(
        f"Rate 0 after one epoch: ours **{100 * at_zero[0]:.2f} %** test accuracy; the original report "
        f"{original.text} ({original.source}). " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ### The final network: under 100k parameters, trained with the chosen rate

# %%
nb.section(cnn_path, "Final network")
original = ORIGINALS["mnist_cnn_final"]
display(
    Markdown(
        f"Test accuracy **{100 * cnn.final['test_accuracy']:.2f} %** with {cnn.model.count_params():,} parameters; "
        f"the problem set's target is {original.text} ({original.source}). " + nb.scale_note(QUICK)
    )
)
