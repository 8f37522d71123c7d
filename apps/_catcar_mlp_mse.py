"""Part b of `apps.catcar_mlp`: does the MSE a network minimises track its classification error (MCE)?

Not an app (leading underscore): `apps.catcar_mlp` is the story, this module one job of it.
"""

import numpy as np

from tfnets.experiment.report import markdown_table


def pearson(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def mse_vs_mce(history):
    """Per split: first/last/best MSE and MCE, the epoch each is lowest, and their correlation over epochs."""
    rows = []
    for split, prefix in (("train", ""), ("valid", "val_"), ("test", "test_")):
        mse = [row.get(prefix + "loss", np.nan) for row in history]
        mce = [row.get(prefix + "mce", np.nan) for row in history]
        if np.all(np.isnan(mse)):
            continue
        rows.append(
            {
                "split": split,
                "first_mse": mse[0],
                "last_mse": mse[-1],
                "min_mse": np.nanmin(mse),
                "epoch_min_mse": int(np.nanargmin(mse)) + 1,
                "first_mce_%": mce[0],
                "last_mce_%": mce[-1],
                "min_mce_%": np.nanmin(mce),
                "epoch_min_mce": int(np.nanargmin(mce)) + 1,
                "pearson_r(mse,mce)": pearson(mse, mce),
                "pearson_r(Δmse,Δmce)": pearson(np.diff(mse), np.diff(mce)),
            }
        )
    return rows


def verdict(rows, epochs):
    """The text under `mse_vs_mce`'s table (`rows`) of a history of `epochs` epochs: one line per split, then the
    generalisation gap and why MSE can move while MCE does not."""
    by_split = {row["split"]: row for row in rows}
    lines = []
    for split, row in by_split.items():
        r = row["pearson_r(mse,mce)"]
        tracking = "tracks MCE closely" if r > 0.9 else "tracks MCE loosely" if r > 0.5 else "does NOT track MCE"
        lines.append(
            f"- {split}: MSE {row['first_mse']:.3f} -> {row['last_mse']:.3f} (lowest at epoch "
            f"{row['epoch_min_mse']}), MCE {row['first_mce_%']:.1f}% -> {row['last_mce_%']:.1f}% (lowest at "
            f"epoch {row['epoch_min_mce']}); correlation over epochs r = {r:.3f}: MSE {tracking}."
        )
    if "train" in by_split and "test" in by_split:
        train, test = by_split["train"], by_split["test"]
        gap = test["last_mce_%"] - train["last_mce_%"]
        if test["epoch_min_mse"] < epochs:
            trend = (
                f"the test MSE is lowest at epoch {test['epoch_min_mse']} while the train MSE is lowest at epoch "
                f"{train['epoch_min_mse']}: after epoch {test['epoch_min_mse']} lower training error no longer "
                "buys lower test error"
            )
        else:
            trend = "the test MSE is still at its lowest in the last epoch (no sign of overfitting in MSE yet)"
        lines.append(f"- generalisation gap at the end: test MCE - train MCE = {gap:.1f} points; {trend}.")
        lines.append(
            "- MSE also measures how far the tanh output is from ±1 on examples already on the right side of "
            "0, so it can keep changing while the sign (and MCE) does not; the Δ-correlation column shows "
            "how often they move together from one epoch to the next."
        )
    return "\n".join(lines)


def part_b(exp, result):
    """Print and report whether MSE tracks the classification error on train and test (`result`: part a's network)."""
    rows = mse_vs_mce(result.history)
    text = verdict(rows, len(result.history))
    print("part b: MSE vs MCE\n" + text)
    exp.report.add(
        "Part b: does MSE track the classification error?", markdown_table(rows, floatfmt=".3f") + "\n" + text
    )
    return rows
