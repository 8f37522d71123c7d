"""What `apps.trigram_embedding` reports besides its training: the count baseline row, part b's top-10 fourth words
for random test trigrams, and the analysis of the learned embedding (nearest neighbours, a 2-D PCA map).

Not an app (leading underscore): helpers of `apps.trigram_embedding`, which owns the run folder's layout.
"""

import time

import numpy as np

from tfnets.experiment.plots import pyplot, save_figure
from tfnets.nn.calibration import softmax
from tfnets.nn.ngram import InterpolatedNgram

NEIGHBOUR_WORDS = ("he", "day", "could", "money", "three", "city", "good", "said")
TOP_K = 10
PCA_FIGURE = "embeddings_pca.png"


def score_columns(scores):
    """`{"valid": {"loss", "accuracy", "top10_accuracy"}, "test": ...}` -> the results table's score columns."""
    columns = {}
    for split in ("valid", "test"):
        columns.update(
            {
                f"{split}_CE": scores[split]["loss"],
                f"{split}_acc_%": 100 * scores[split]["accuracy"],
                f"{split}_top10_%": 100 * scores[split]["top10_accuracy"],
            }
        )
    return columns


def count_baseline_row(data, merge):
    """The results row of a smoothed 4-gram count model on the same split: what the nets have to beat."""
    started = time.perf_counter()
    model = InterpolatedNgram(data.num_classes).fit(data.x_train, data.y_train)
    scores = {}
    for split in ("valid", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        probabilities = model.predict_proba(x)
        truth = probabilities[np.arange(len(y)), y]
        # In the top 10 <=> fewer than 10 words are strictly more likely (ties count for the true word).
        scores[split] = {
            "loss": float(-np.log(truth).mean()),
            "accuracy": float((probabilities.argmax(axis=1) == y).mean()),
            "top10_accuracy": float(((probabilities > truth[:, None]).sum(axis=1) < TOP_K).mean()),
        }
    return {
        "model": f"count baseline, not a net: interpolated 4-gram (absolute discounting {model.discount:g})",
        "merge": merge,
        "epochs_run": "-",
        "best_epoch": "-",
        **score_columns(scores),
        "wall_time_s": round(time.perf_counter() - started, 3),
    }


def top_candidates(probabilities, words, k=TOP_K):
    """(V,) probabilities -> [(word, probability)] of the k most likely words, most likely first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(words[i], float(probabilities[i])) for i in order]


def part_b(exp, model, data, seed, count=5):
    """Five seeded random test trigrams: the words, the true fourth word and the top-10 candidates."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(data.y_test), size=min(count, len(data.y_test)), replace=False)
    probabilities = softmax(model.predict(data.x_test[picks], verbose=0))
    words = data.class_names
    blocks = []
    for row, i in enumerate(picks):
        context = " ".join(words[j] for j in data.x_test[i])
        truth = words[data.y_test[i]]
        ranked = top_candidates(probabilities[row], words)
        rank = next((r + 1 for r, (w, _) in enumerate(ranked) if w == truth), None)
        listing = ", ".join(f"{w} {p:.3f}" for w, p in ranked)
        blocks.append(
            f"- **{context}** → true: **{truth}** ({f'rank {rank}' if rank else 'not in the top 10'}); "
            f"top 10: {listing}"
        )
    text = "\n".join(blocks)
    print("part b: five random test trigrams\n" + text.replace("**", ""))
    exp.report.add(f"Part b: {len(picks)} random test trigrams (seed {seed}) and the top-10 fourth words", text)


def nearest_words(embeddings, words, query, k=5):
    """The k words whose embeddings have the highest cosine similarity to `query`'s."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    index = words.index(query)
    similarity = unit @ unit[index]
    similarity[index] = -np.inf
    order = np.argsort(-similarity, kind="stable")[:k]
    return [(words[i], float(similarity[i])) for i in order]


def embedding_analysis(exp, model, words, title):
    """Nearest neighbours of a few words, and a 2-D PCA map of all 250 embeddings."""
    from sklearn.decomposition import PCA

    plt = pyplot()
    embeddings = np.asarray(model.get_layer("embedding").embeddings.numpy())
    rows = [
        {
            "word": w,
            "nearest (cosine similarity)": ", ".join(
                f"{n} {s:.2f}" for n, s in nearest_words(embeddings, list(words), w)
            ),
        }
        for w in NEIGHBOUR_WORDS
        if w in words
    ]
    exp.report.add_table(f"Nearest neighbours in embedding space ({title})", rows)
    points = PCA(n_components=2, random_state=0).fit_transform(embeddings)
    fig, ax = plt.subplots(figsize=(14, 11))
    ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.4)
    for (x, y), word in zip(points, words):
        ax.annotate(word, (x, y), fontsize=7)
    ax.set_title(f"PCA of the 250 word embeddings ({title})")
    path = exp.run.path / PCA_FIGURE
    save_figure(fig, path)
    exp.report.add_image("2-D PCA projection of the word embeddings", path)
    return rows
