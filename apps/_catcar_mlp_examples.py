"""The exported cat-vs-car network's test images, right and wrong: a figure of `apps.catcar_mlp`'s report.

Not an app (leading underscore): `apps.catcar_mlp` is the story, this module one job of it.
"""

import numpy as np

from tfnets.experiment.plots import plot_image_grid


def show_examples(exp, model, raw, prepared, count=8, seed=0):
    """Grid of `count` correctly and `count` wrongly classified test images, upright, with true/predicted class."""
    outputs = model.predict(prepared.x_test, batch_size=1024, verbose=0).reshape(-1)
    predicted = (outputs > 0).astype(int)
    order = np.random.default_rng(seed).permutation(len(predicted))
    correct = [i for i in order if predicted[i] == raw.y_test[i]][:count]
    wrong = [i for i in order if predicted[i] != raw.y_test[i]][:count]
    names = raw.class_names
    titles = [
        f"{'ok' if i in correct else 'WRONG'}: {names[raw.y_test[i]]}\npred {names[predicted[i]]} ({outputs[i]:+.2f})"
        for i in correct + wrong
    ]
    path = plot_image_grid(raw.x_test[correct + wrong], titles, exp.run.path / "test_examples.png", cols=count)
    exp.report.add_image(
        "Test images classified by the exported model (top row right, bottom row wrong)",
        path,
        note="Shown upright; the number is the tanh output (> 0 means car).",
    )
