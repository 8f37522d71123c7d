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
# # EEE443 HW2 Q2: the fourth word of a trigram, through a learned word embedding
#
# Bilkent EEE443 homework 2, question 2 (the 250-word corpus of Hinton's neural-networks course), worked with
# tfnets: three word indices → one shared embedding matrix (250 × D) → P sigmoid hidden units → a 250-way softmax.
# The handout's parts in order: (a) train (D, P) = (32, 256), (16, 128), (8, 64) with SGD and momentum and compare
# their cross-entropy; (b) the predicted fourth word for sample trigrams; and a look at the learned embedding: the
# nearest words and a 2-D projection of the word vectors.
#
# `QUICK` (set `TFNETS_QUICK=1`) trains the three networks at the app's `--quick` scale (2,000 training trigrams, two
# epochs) and leaves out our extra rows. Otherwise the cell runs the app's default configuration in the command line's `runs/` folder (the three
# networks plus our extra rows): after `python -m apps.trigram_embedding` it only reads and evaluates that run.

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
from IPython.display import Markdown, display

matplotlib.use("Agg")  # figures are rendered to PNG by nb.show; no display is needed
import matplotlib.pyplot as plt

import nbsupport as nb
from apps import trigram_embedding
from apps.results import ORIGINALS

display(Markdown(nb.scale_note(QUICK)))

# %% [markdown]
# ## (a) Training the three networks

# %%
result = trigram_embedding.run(**nb.app_options(QUICK, "trigram_embedding", extra="none"))
path = nb.run_folder(result, "trigram_embedding")
nb.section(path, "Data caveat")
nb.section(path, "Training")
nb.section(path, "Results")
nb.section(path, "Validation cross-entropy")

# %%
original = ORIGINALS["trigram_sum"]
valid_accuracy, _ = trigram_embedding.headlines(path)["valid_accuracy"]
display(
    Markdown(
        f"(32, 256) with the three words in order: validation accuracy "
        f"**{100 * valid_accuracy:.2f} %** at its best epoch. The original report has "
        f"{original.text} for the order-free input ({original.source}); `python -m apps.trigram_embedding --merge sum "
        f"--configs 32x256 --extra none` measures that row. Our corpus is a surrogate with its own split, so the "
        f"numbers compare only loosely. " + nb.scale_note(QUICK)
    )
)

# %% [markdown]
# ## (b) The predicted fourth word for sample trigrams
#
# Five random test trigrams with the network's top ten candidates, then a few trigrams of our own through the
# exported model (`python -m apps.trigram_embedding predict "i do not"` on the command line).

# %%
nb.section(path, "Part b")

# %%
samples = ["i do not", "he said that", "it is a", "what do you"]
ranked = {
    text: trigram_embedding.predict_main([text, "--model-dir", str(result.export_path), "--top-k", "5"])
    for text in samples
}
nb.table(
    [
        {"rank": k + 1, **{text: f"{ranked[text][k][0]} ({ranked[text][k][1]:.3f})" for text in samples}}
        for k in range(5)
    ]
)
fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 2.6), sharey=True)
for ax, text in zip(axes, samples):
    words, probabilities = zip(*ranked[text])
    ax.barh(range(len(words))[::-1], probabilities)
    ax.set_yticks(range(len(words))[::-1], words)
    ax.set_title(f"{text} …")
    ax.set_xlabel("probability")
nb.show(fig)

# %% [markdown]
# The handout asks for the network's guesses and a comment on whether they make sense; it has no number for them.

# %% [markdown]
# ## The learned embedding: nearest words and a 2-D projection

# %%
nb.section(path, "Nearest neighbours")
nb.section(path, "2-D PCA projection")
display(
    Markdown(
        "The handout asks whether similar words end up close together (it reports the plot, no number); the table "
        "gives each word's nearest words by cosine similarity. " + nb.scale_note(QUICK)
    )
)
