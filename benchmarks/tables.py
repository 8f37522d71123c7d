"""The benchmark's markdown tables and its goals."""

import statistics

from benchmarks.gemm import gemm_limit
from benchmarks.mlp import BF16, BF16_VS_FLOAT32, MANUAL_VS_DENSE
from tfnets.experiment.report import markdown_table


def _spread(stats, fmt="{:,.0f}"):
    return f"{fmt.format(stats['min'])}-{fmt.format(stats['max'])}" if stats else ""


def mlp_table(results):
    rows = []
    for r in results:
        s = r["samples_per_s"]
        dw = r.get("max_abs_dw_vs_numpy")
        limit = f"{100 * r['fraction_of_gemm_limit']:.0f}"
        if r.get("gemm_limit_precision") == "bfloat16":
            limit += f" bf16 ({100 * r['fraction_of_float32_gemm_limit']:.0f} fp32)"
        rows.append(
            {
                "batch": r["batch"],
                "variant": r["variant"],
                "layers": r["layers"],
                "XLA": "on" if r["xla"] else "off",
                "precision": r.get("precision", "float32"),
                "how": r["driver"],
                "samples/s (median)": f"{s['median']:,.0f}",
                "min-max": _spread(s),
                "x NumPy": f"{r['x_numpy']:.2f}" if r.get("x_numpy") else "",
                "GFLOP/s": f"{r['gflops']:.1f}",
                "% of GEMM limit": limit,
                "max abs dw vs NumPy (1 epoch)": "-" if dw is None else f"{dw:.1e}",
                "loss after epoch 1": f"{r['loss_after_epoch1']:.4f}" if "loss_after_epoch1" in r else "",
                "train acc after epoch 1": (
                    f"{100 * r['train_accuracy_after_epoch1']:.1f} %" if "train_accuracy_after_epoch1" in r else ""
                ),
            }
        )
    return markdown_table(rows)


def gemm_table(gemm_rows, n_samples):
    rows = [
        {
            "batch": r["batch"],
            "GEMM": r["gemm"],
            "shape": r["shape"],
            "np.matmul GFLOP/s": f"{r['numpy']:.3g}",
            "tf.linalg.matmul": f"{r['tf']:.3g}",
            "tf XLA": f"{r['tf_xla']:.3g}",
            "tf bf16": f"{r['tf_bf16']:.3g}",
            "tf XLA bf16": f"{r['tf_xla_bf16']:.3g}",
        }
        for r in gemm_rows
    ]
    summary = []
    for batch in dict.fromkeys(r["batch"] for r in gemm_rows):
        seconds, gflops = gemm_limit(gemm_rows, n_samples, batch)
        bf16_seconds, bf16_gflops = gemm_limit(gemm_rows, n_samples, batch, "best_bf16")
        summary.append(
            {
                "batch": batch,
                "float32 GEMM-only epoch time (s)": f"{seconds:.4f}",
                "float32 limit GFLOP/s (best library per GEMM)": f"{gflops:.1f}",
                "bf16 GEMM-only epoch time (s)": f"{bf16_seconds:.4f}",
                "bf16 limit GFLOP/s (tf or XLA per GEMM)": f"{bf16_gflops:.1f}",
            }
        )
    return markdown_table(rows) + "\n" + markdown_table(summary)


def cnn_table(rows):
    out = []
    for r in rows:
        cell = {"part": r["part"]}
        if "samples_per_s" in r:
            cell["samples/s (median)"] = f"{r['samples_per_s']['median']:,.0f}"
            cell["min-max"] = _spread(r["samples_per_s"])
        if "epoch_s" in r:
            cell["epoch s (median)"] = f"{r['epoch_s']['median']:.2f} ({r['samples']} samples)"
        if "latency_ms" in r:
            lat = r["latency_ms"]
            cell["latency ms (median)"] = f"{lat['median']:.2f}"
            cell["min-max"] = _spread(lat, "{:.2f}")
        out.append(cell)
    return markdown_table(out)


def paired_speed_ratio(row, other):
    """Median over repeats of speed(row) / speed(other), each pair timed back to back (less noisy than a ratio
    of medians when the machine's load drifts)."""
    return statistics.median(o / r for r, o in zip(row["seconds"], other["seconds"]))


def goals(results):
    """The benchmark's goals, evaluated on the medians (reported, never asserted); separately for the float32
    variants and for the mixed_bfloat16 ones (which change results: see the bf16 lines)."""
    lines = []
    by = {(r["batch"], r["variant"]): r for r in results}
    batches = list(dict.fromkeys(r["batch"] for r in results))
    tf_rows = [r for r in results if r["variant"] not in ("numpy", "numpy_blas1")]
    groups = [(p, [r for r in tf_rows if r.get("precision", "float32") == p]) for p in ("float32", BF16)]
    groups = [(p, rows) for p, rows in groups if rows]
    for batch, target, label in ((batches[0], 1.5, "smallest batch"), (batches[-1], 3.0, "full batch")):
        for precision, rows in groups:
            lines += _speed_goal(rows, by, batch, target, label, precision)
    for batch in batches:
        parts = []
        for manual, dense in MANUAL_VS_DENSE:
            if (batch, manual) in by and (batch, dense) in by:
                ratio = paired_speed_ratio(by[(batch, manual)], by[(batch, dense)])
                parts.append(f"{manual}/{dense} = {ratio:.3f}{'' if abs(ratio - 1) <= 0.05 else ' (outside 5 %)'}")
        if parts:
            lines.append(
                f"- hand-written vs Dense speed at batch {batch} (median of back-to-back pairs): " + "; ".join(parts)
            )
    for precision, rows in groups:
        full = [r for r in rows if r["batch"] == batches[-1]]
        if full:
            best = max(full, key=lambda r: r["fraction_of_gemm_limit"])
            verdict = "met" if best["fraction_of_gemm_limit"] >= 0.7 else "NOT met"
            limit = "the bf16 GEMM limit" if precision == BF16 else "the float32 GEMM limit"
            lines.append(
                f"- [{precision}] full batch >= 70 % of {limit}: best is {best['variant']} at "
                f"{100 * best['fraction_of_gemm_limit']:.0f} %: {verdict}"
            )
    for batch in batches:
        parts = []
        for low, twin in BF16_VS_FLOAT32:
            if (batch, low) in by and (batch, twin) in by:
                a, b = by[(batch, low)], by[(batch, twin)]
                parts.append(
                    f"{low} is {paired_speed_ratio(a, b):.2f}x {twin}'s speed, max dw vs NumPy "
                    f"{a['max_abs_dw_vs_numpy']:.1e} vs {b['max_abs_dw_vs_numpy']:.1e}, loss after epoch 1 "
                    f"{a['loss_after_epoch1']:.4f} vs {b['loss_after_epoch1']:.4f}"
                )
        if parts:
            lines.append(
                f"- bf16 vs float32 twin at batch {batch} (speed: median of back-to-back pairs): " + "; ".join(parts)
            )
    return "\n".join(lines) + "\n"


def _speed_goal(rows, by, batch, target, label, precision):
    """The "TF >= target x NumPy" goal line for the best of `rows` at this batch size (a list of 0 or 1 line)."""
    best = max((r for r in rows if r["batch"] == batch and r.get("x_numpy")), key=lambda r: r["x_numpy"], default=None)
    if best is None:
        return []
    verdict = "met" if best["x_numpy"] >= target else "NOT met"
    line = (
        f"- [{precision}] TF >= {target}x NumPy at {label} ({batch}): best is {best['variant']} at "
        f"{best['x_numpy']:.2f}x: {verdict}"
    )
    single = by.get((batch, "numpy_blas1"))
    if single:
        ratio = best["samples_per_s"]["median"] / single["samples_per_s"]["median"]
        line += (
            f"; against NumPy with 1 BLAS thread (numpy_blas1) {ratio:.2f}x: {'met' if ratio >= target else 'NOT met'}"
        )
    return [line]
