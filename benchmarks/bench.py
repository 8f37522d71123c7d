"""Benchmark: notMNIST MLP training throughput against the NumPy reference and the machine's GEMM limit.

    python -m benchmarks                     # the full benchmark (a few minutes on 2 cores)
    python -m benchmarks --quick             # a smoke test: tiny data, 2 repeats, well under a minute

What it measures, in ONE process so that the ratios are comparable on a noisy shared machine:

1. Training throughput (samples/s) of the notMNIST MLP 784-1000(ReLU)-10, softmax cross-entropy, momentum SGD,
   for batch 32, 256 and the full training set as one batch. Variants (see `VARIANTS`): the NumPy reference
   (`tfnets.nn.reference.NumpyMLP`); Keras `Dense` and the hand-written-backprop layers (`ManualDense` +
   `SoftmaxCrossEntropy`), each trained by `model.fit` with and without XLA; `fit` with `steps_per_execution`
   (one call runs the whole epoch); `fit` on a `tf.data` pipeline with prefetch; and a custom loop that runs the
   whole epoch inside ONE compiled `tf.function` (with and without XLA); and `*_bf16` twins of the fastest
   ones with Keras' `mixed_bfloat16` policy (bf16 matmuls, float32 variables/master weights and optimizer,
   logits cast to float32 before the loss). Every variant starts from the same Xavier weights; after its
   first (warm-up, tracing/compiling) epoch its weights are compared with the NumPy reference's (`max|dw|`),
   which says whether the variant changes results, and the training-set loss and accuracy of those weights are
   computed with NumPy in float32 (`NumpyMLP.evaluate`), which says whether a bf16 variant still trains as well
   as its float32 twin. The timed repeats then continue training. Variants are interleaved (the order rotates
   every repeat; hand-written and bf16 variants run right next to their float32 Dense twin) and each is
   repeated `--repeats` times; the table reports the median and min-max and the ratio to NumPy's median at the
   same batch size.
2. The limit: GFLOP/s of `np.matmul` and `tf.linalg.matmul` (graph and XLA) for each GEMM of a training step at
   that batch size (best of 15 timings, measured before and after the training timings: contention only ever
   slows a GEMM down); the limit is the time those GEMMs need at the best measured speed. A variant's fraction of
   it is (GEMM-only time) / (its actual time). The same GEMMs are timed with bf16 operands
   (`tf.linalg.matmul`, graph and XLA; NumPy has no bf16): the `*_bf16` rows are measured against that bf16
   limit, the other rows against the float32 one. FLOPs count the work a step needs:
   N * (4*784*H + 6*H*10) per epoch (forward, weight gradients, and the hidden-layer input gradient; no
   implementation computes the gradient w.r.t. the input images). The common 6*N*params rule would read
   about 1.5x higher GFLOP/s for the same times.
3. The notMNIST CNN (`apps.notmnist_cnn.build_model`): training samples/s and epoch time (fit, with and without
   XLA); inference through the exported SavedModel: latency at batch 1 and throughput at batch 256.
4. On a machine with a GPU, the MLP table again with mixed precision (`mixed_float16`) on; CPU-only machines
   skip this section and say so.

Op determinism is switched OFF (it makes Keras silently drop XLA). Timings are wall-clock on whatever else the
machine runs: the load average before and after is recorded next to the results.
Outputs: `runs/bench/<run-id>/bench.md` and `bench.json` (written atomically), and the markdown on stdout.
"""

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.cnn import run_cnn
from benchmarks.gemm import add_ratios, best_gemms, measure_gemms
from benchmarks.mlp import FULL, HIDDEN, LEARNING_RATE, MOMENTUM, VARIANTS, load_training_data, run_mlp
from benchmarks.tables import cnn_table, gemm_table, goals, mlp_table
from tfnets import atomic
from tfnets.experiment.cli import ArgumentParser, exit_with, positive_int, require


def environment(intra, inter):
    import keras
    import tensorflow as tf

    info = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "tf_intra_op_threads": intra,
        "tf_inter_op_threads": inter,
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: oneDNN on by default)"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "op_determinism": bool(_determinism_enabled()),
        "gpus": [d.name for d in _gpus()],
    }
    try:
        from threadpoolctl import threadpool_info

        info["numpy_blas"] = [
            {k: p.get(k) for k in ("internal_api", "num_threads", "architecture", "version")}
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
    except ImportError:
        info["numpy_blas"] = "threadpoolctl not installed"
    return info


# ---------------------------------------------------------------------------------------------------------------
# TF configuration
# ---------------------------------------------------------------------------------------------------------------


def _gpus():
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def _determinism_enabled():
    from tensorflow.python.framework import config as tf_config

    return tf_config.is_op_determinism_enabled()


def configure_tf(intra, inter):
    """Op determinism off (it would make Keras drop XLA); thread pools as asked. Returns the pools in force."""
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    # tf.config.experimental has only enable_op_determinism; the switch back lives in the framework module.
    tf_config.disable_op_determinism()
    try:
        if intra is not None:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        pass  # the runtime already started (e.g. inside the test suite): keep its pools, report them below
    return (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )


def set_precision(policy):
    import keras

    keras.mixed_precision.set_global_policy(policy)


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------


def batch_sizes(text):
    """`"32,256,full"` -> [32, 256, "full"]."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        out.append(FULL if part == FULL else positive_int(part))
    if not out:
        raise argparse.ArgumentTypeError("expected batch sizes such as 32,256,full")
    return out


def build_parser():
    parser = ArgumentParser(
        prog="python -m benchmarks",
        description="Training throughput of the notMNIST MLP and CNN against the NumPy "
        "reference and the machine's GEMM limit.",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="dataset folder with notMNIST (default: $TFNETS_DATA_DIR, else ~/.cache/tfnets/data); "
        "random data of the same shape is used when it cannot be loaded",
    )
    parser.add_argument("--out", default="runs", help="root folder of outputs (default runs/; writes <out>/bench/<id>)")
    parser.add_argument("--run-id", default=None, help="name of the output folder (default: a UTC timestamp)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 256 samples (batch 256 is the full batch), 2 repeats, fewer GEMM timings, a short CNN part",
    )
    parser.add_argument("--repeats", type=positive_int, default=None, help="timed repeats per variant (default 7)")
    parser.add_argument(
        "--epochs-per-repeat",
        type=positive_int,
        default=None,
        help="epochs in one timed repeat (default 1; 3 for the full batch, which is one step)",
    )
    parser.add_argument(
        "--batch-sizes",
        type=batch_sizes,
        default=[32, 256, FULL],
        help="comma-separated, 'full' = the whole training set (default 32,256,full)",
    )
    parser.add_argument(
        "--max-samples",
        type=positive_int,
        default=None,
        help="use at most this many training samples (default: all; 256 with --quick)",
    )
    parser.add_argument(
        "--variants", default=None, help="comma-separated subset of: " + ", ".join(v.name for v in VARIANTS)
    )
    parser.add_argument("--no-cnn", dest="cnn", action="store_false", help="skip the CNN part")
    parser.add_argument(
        "--mixed-precision-table",
        choices=("auto", "always", "never"),
        default="auto",
        help="the MLP table again with mixed_float16: auto = only when a GPU is visible",
    )
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=None,
        help="TF intra-op thread pool (default: TF's choice, one per core)",
    )
    parser.add_argument(
        "--inter-op-threads", type=int, default=None, help="TF inter-op thread pool (default: TF's choice)"
    )
    parser.add_argument("--seed", type=int, default=0, help="initial weights and random data (default 0)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def select_variants(text):
    if not text:
        return list(VARIANTS)
    known = {v.name: v for v in VARIANTS}
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    require(not unknown, f"unknown --variants {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[n] for n in names]


def main(argv=None):
    args = build_parser().parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 7)
    max_samples = args.max_samples or (256 if args.quick else None)
    variants = select_variants(args.variants)
    run_id = args.run_id or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = Path(args.out) / "bench" / run_id

    def log(message):
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    intra, inter = configure_tf(args.intra_op_threads, args.inter_op_threads)
    load_before = os.getloadavg()
    started = time.time()
    x, y, data_note = load_training_data(args.data_dir, max_samples, args.seed)
    n = len(x)
    sizes = list(dict.fromkeys(n if b == FULL else b for b in args.batch_sizes))
    for b in sizes:
        require(
            n % b == 0,
            f"--batch-sizes: {b} does not divide the {n} training samples used; use a divisor "
            f"(or --max-samples a multiple of it)",
        )
    log(f"data: {data_note}")

    def gemm_pass(when):
        rows = []
        for b in sizes:
            log(f"GEMM throughput at batch {b} ({when})")
            rows += measure_gemms(b, repeats=2 if args.quick else 15, flops_per_timing=2e7 if args.quick else 2e8)
        return rows

    # Measured before and after the training timings (best of both), so that a busy spell of the shared
    # machine during one pass does not lower the limit.
    gemm_before = gemm_pass("before the MLP timings")

    def mlp_section(precision):
        set_precision(precision)
        try:
            rows = []
            for b in sizes:
                epochs = args.epochs_per_repeat or (3 if b == n and not args.quick else 1)
                rows += run_mlp(x, y, [b], variants, repeats, epochs, args.seed, LEARNING_RATE, log)
            return rows
        finally:
            set_precision("float32")

    mlp = mlp_section("float32")
    gemm_rows = gemm_before if args.quick else best_gemms(gemm_before, gemm_pass("after the MLP timings"))
    add_ratios(mlp, gemm_rows, n)
    cnn_rows, cnn_note = [], "skipped (--no-cnn)"
    if args.cnn:
        cnn_n = min(n, 128 if args.quick else n)
        cnn_rows, cnn_note = run_cnn(
            x[:cnn_n],
            y[:cnn_n],
            32,
            1 if args.quick else 5,
            args.seed,
            latency_calls=10 if args.quick else 200,
            log=log,
        )
    gpus = _gpus()
    mixed, mixed_note = None, None
    if args.mixed_precision_table == "always" or (args.mixed_precision_table == "auto" and gpus):
        log("mixed precision (mixed_float16) MLP table")
        mixed = mlp_section("mixed_float16")
        add_ratios(mixed, gemm_rows, n)
        mixed_note = f"GPU(s): {[d.name for d in gpus]}" if gpus else "no GPU: mixed_float16 run on the CPU"
    else:
        mixed_note = (
            "GPU section skipped: no GPU visible (tf.config.list_physical_devices('GPU') is empty)"
            if not gpus
            else "skipped (--mixed-precision-table never)"
        )
    load_after = os.getloadavg()

    result = {
        "run_id": run_id,
        "data": data_note,
        "n_train": n,
        "hidden": HIDDEN,
        "learning_rate": LEARNING_RATE,
        "momentum": MOMENTUM,
        "repeats": repeats,
        "quick": args.quick,
        "seed": args.seed,
        "environment": environment(intra, inter),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "wall_seconds": time.time() - started,
        "gemm": gemm_rows,
        "mlp": mlp,
        "cnn": {"builder": cnn_note, "rows": cnn_rows},
        "mixed_precision": {"note": mixed_note, "mlp": mixed},
    }
    markdown = render(result)
    atomic.write_json(out_dir / "bench.json", result)
    atomic.write_text(out_dir / "bench.md", markdown)
    print(markdown)
    log(f"wrote {out_dir / 'bench.md'} and bench.json")
    return result


def render(result):
    env = result["environment"]
    head = (
        f"# Benchmark {result['run_id']}\n\n"
        f"- data: {result['data']}\n"
        f"- MLP 784-{result['hidden']}-10, momentum SGD lr={result['learning_rate']} gamma={result['momentum']}, "
        f"{result['repeats']} interleaved repeats per variant; median and min-max over repeats\n"
        f"- TF {env['tensorflow']}, Keras {env['keras']}, NumPy {env['numpy']} ({env['numpy_blas']}); "
        f"{env['cpu_count']} CPUs; TF threads intra={env['tf_intra_op_threads']} "
        f"inter={env['tf_inter_op_threads']} (0 = TF default); oneDNN: {env['TF_ENABLE_ONEDNN_OPTS']}; "
        f"op determinism: {env['op_determinism']}\n"
        f"- load average before {tuple(round(v, 2) for v in result['load_average_before'])}, after "
        f"{tuple(round(v, 2) for v in result['load_average_after'])} (other processes share the machine: "
        f"compare ratios within this run); wall time {result['wall_seconds']:.0f} s\n"
    )
    parts = [
        head,
        "## MLP training throughput\n\nGFLOP/s count N*(4*784*H + 6*H*10) per epoch (the work a step needs); "
        "'% of GEMM limit' = time the step's GEMMs need at the best measured speed / actual time: float32 "
        "rows against the float32 GEMM limit, mixed_bfloat16 rows against the bf16 GEMM limit (marked "
        "'bf16', with their % of the float32 limit in brackets). 'max abs dw' compares weights after one "
        "epoch from identical initial weights with NumPy's (bf16 rounds to 8 mantissa bits, so its dw is "
        "larger: it changes results); 'loss/train acc after epoch 1' evaluate those weights on the training "
        "set with NumPy in float32 (does the variant still train as well?).\n\n" + mlp_table(result["mlp"]),
        "## Goals (from the medians above; reported, not asserted; [float32] and [mixed_bfloat16] "
        "variants judged separately)\n\n" + goals(result["mlp"]),
        "## GEMM limit (matmul throughput for the MLP's GEMM shapes)\n\n"
        + gemm_table(result["gemm"], result["n_train"]),
    ]
    cnn = result["cnn"]
    parts.append(f"## notMNIST CNN\n\nmodel: {cnn['builder']}\n\n" + (cnn_table(cnn["rows"]) if cnn["rows"] else ""))
    mixed = result["mixed_precision"]
    parts.append(
        "## GPU: mixed precision\n\n" + mixed["note"] + "\n\n" + (mlp_table(mixed["mlp"]) if mixed["mlp"] else "")
    )
    return "\n".join(parts)


if __name__ == "__main__":
    exit_with(main)
