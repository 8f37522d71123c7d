"""The GEMM limit: how fast this machine multiplies the matrices of one training step."""

import time

import numpy as np

from benchmarks.mlp import BF16, HIDDEN, epoch_flops, step_flops


def measure_gemms(batch, repeats, hidden=HIDDEN, copies=4, flops_per_timing=2e8):
    """GFLOP/s of each training-step GEMM at this batch size for np.matmul, tf.linalg.matmul (graph) and XLA,
    in float32; and tf.linalg.matmul (graph and XLA) on bfloat16 operands (the GEMMs of a mixed_bfloat16 step).

    TF runs `copies` distinct left operands in a `tf.range` loop inside one function (distinct inputs so that
    nothing is folded or deduplicated). The BEST of `repeats` timings is kept: a limit is what the machine
    can do, and other processes only ever slow a timing down.
    """
    import tensorflow as tf

    rng = np.random.default_rng(0)
    rows = []
    for name, (flops, (m, k, n), trans_a) in step_flops(batch, hidden).items():
        a_shape = (k, m) if trans_a else (m, k)
        lefts = rng.standard_normal((copies,) + a_shape, dtype=np.float32)
        right = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        inner = max(1, int(flops_per_timing // flops))  # enough calls per timing to see past the timer

        numpy_lefts = [left.T if trans_a else left for left in lefts]

        def numpy_once():
            for i in range(inner):
                np.matmul(numpy_lefts[i % copies], right, out=out)

        row = {"batch": batch, "gemm": name, "shape": f"({m}x{k})@({k}x{n})", "MFLOP": flops / 1e6}
        row["numpy"] = flops * inner / _best_time(numpy_once, repeats) / 1e9
        for label, jit, dtype in (
            ("tf", False, tf.float32),
            ("tf_xla", True, tf.float32),
            ("tf_bf16", False, tf.bfloat16),
            ("tf_xla_bf16", True, tf.bfloat16),
        ):
            tf_lefts, tf_right = tf.constant(lefts, dtype), tf.constant(right, dtype)

            @tf.function(jit_compile=jit)
            def tf_loop(lefts, right):
                acc = tf.constant(0.0)
                for i in tf.range(inner):
                    product = tf.linalg.matmul(lefts[i % copies], right, transpose_a=trans_a)
                    acc += tf.cast(product[0, 0], tf.float32)
                return acc

            def tf_once():
                float(tf_loop(tf_lefts, tf_right))

            tf_once()  # trace / compile
            row[label] = flops * inner / _best_time(tf_once, repeats) / 1e9
        row["best"] = max(row["numpy"], row["tf"], row["tf_xla"])
        row["best_bf16"] = max(row["tf_bf16"], row["tf_xla_bf16"])
        rows.append(row)
    return rows


def _best_time(fn, repeats):
    fn()  # warm caches and threads
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_gemms(*measurements):
    """Per (batch, GEMM) row, the best GFLOP/s of each library over several `measure_gemms` results."""
    best = {}
    for rows in measurements:
        for row in rows:
            key = (row["batch"], row["gemm"])
            if key not in best:
                best[key] = dict(row)
            else:
                for label in ("numpy", "tf", "tf_xla", "best", "tf_bf16", "tf_xla_bf16", "best_bf16"):
                    best[key][label] = max(best[key][label], row[label])
    return list(best.values())


def gemm_limit(gemm_rows, n_samples, batch, best="best"):
    """Seconds per epoch if the step did nothing but its GEMMs at the best measured speed; and that GFLOP/s.

    best: "best" (float32: the fastest of np.matmul, tf and XLA per GEMM) or "best_bf16" (bf16 operands:
    the faster of tf and XLA per GEMM).
    """
    rows = [r for r in gemm_rows if r["batch"] == batch]
    step_seconds = sum(r["MFLOP"] * 1e6 / (r[best] * 1e9) for r in rows)
    steps = n_samples // batch
    return step_seconds * steps, epoch_flops(n_samples, batch) / (step_seconds * steps) / 1e9


def add_ratios(results, gemm_rows, n_samples):
    """Ratio to NumPy, achieved GFLOP/s and fraction of the GEMM limit, in place.

    mixed_bfloat16 rows are measured against the bf16 GEMM limit (`fraction_of_gemm_limit`, the table's
    column) and, for reference, against the float32 one (`fraction_of_float32_gemm_limit`); every other row
    (mixed_float16 in the GPU section included) against the float32 limit.
    """
    for row in results:
        batch, median = row["batch"], row["samples_per_s"]["median"]
        numpy_row = next((r for r in results if r["batch"] == batch and r["variant"] == "numpy"), None)
        row["x_numpy"] = median / numpy_row["samples_per_s"]["median"] if numpy_row else None
        flops_per_sample = epoch_flops(n_samples, batch) / n_samples
        row["gflops"] = median * flops_per_sample / 1e9
        bf16 = row.get("precision") == BF16
        _, limit_gflops = gemm_limit(gemm_rows, n_samples, batch, "best_bf16" if bf16 else "best")
        _, float32_gflops = gemm_limit(gemm_rows, n_samples, batch)
        row["gemm_limit_precision"] = "bfloat16" if bf16 else "float32"
        row["gemm_limit_gflops"] = limit_gflops
        row["fraction_of_gemm_limit"] = row["gflops"] / limit_gflops
        row["fraction_of_float32_gemm_limit"] = row["gflops"] / float32_gflops
