"""Benchmark: notMNIST MLP training throughput against the NumPy reference and the machine's GEMM limit.

    python -m tfnets.bench                   # the full benchmark (a few minutes on 2 cores)
    python -m tfnets.bench --quick           # a smoke test: tiny data, 2 repeats, well under a minute
    python -m apps.bench ...                 # the same

What it measures, in ONE process so that the ratios are comparable on a noisy shared machine:

1. Training throughput (samples/s) of the notMNIST MLP 784-1000(ReLU)-10, softmax cross-entropy, momentum SGD,
   for batch 32, 256 and the full training set as one batch. Variants (see `VARIANTS`): the NumPy reference
   (`tfnets.reference.NumpyMLP`); Keras `Dense` and the hand-written-backprop layers (`ManualDense` +
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
import dataclasses
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tfnets import atomic
from tfnets.cli import ArgumentParser, exit_with, positive_int, require
from tfnets.errors import TfnetsError
from tfnets.report import markdown_table

HIDDEN = 1000
INPUT_DIM = 784
NUM_CLASSES = 10
LEARNING_RATE = 0.01
MOMENTUM = 0.9
FULL = "full"
BF16 = "mixed_bfloat16"  # Keras dtype policy: bf16 compute, float32 variables


# ---------------------------------------------------------------------------------------------------------------
# What is measured
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Variant:
    """One way to train the MLP.

    driver: "numpy" (NumpyMLP.train_step loop), "fit" (keras `Model.fit`) or "epoch_fn" (custom loop, a whole
    epoch in one `tf.function`). layers: "dense" (keras Dense + SparseCategoricalCrossentropy) or "manual"
    (ManualDense + SoftmaxCrossEntropy). steps_per_execution: 0 = all steps of an epoch in one call.
    pipeline (fit only): "arrays" (NumPy arrays into fit), "tf.data" (from_tensor_slices.batch.prefetch) or
    "runs" (`tfnets.runs.epoch_dataset`, the apps' own pipeline, unshuffled here). blas_threads (numpy only):
    limit OpenBLAS to this many threads (0 = its default, one per core). precision: "float32" (the global
    Keras policy, float32 outside the GPU section) or "mixed_bfloat16" (set on the layers only, never globally).
    """

    name: str
    driver: str
    layers: str = "dense"
    jit: bool = False
    steps_per_execution: int = 1
    pipeline: str = "arrays"
    blas_threads: int = 0
    precision: str = "float32"

    @property
    def description(self):
        if self.driver == "numpy":
            return "NumPy reference (NumpyMLP)" + (f", {self.blas_threads} BLAS thread" if self.blas_threads else "")
        what = {"fit": "fit", "epoch_fn": "epoch in one tf.function"}[self.driver]
        if self.driver == "fit":
            what += {"arrays": " on arrays", "tf.data": " on tf.data (prefetch)",
                     "runs": " on tfnets.runs.epoch_dataset + NaN guard (the apps' path)"}[self.pipeline]
        if self.steps_per_execution != 1:
            what += ", steps_per_execution=epoch"
        if self.precision != "float32":
            what += f", {self.precision}"
        return what


VARIANTS = (  # each hand-written variant right after its Dense twin: they run back to back in every repeat
    Variant("numpy", "numpy", layers="-"),
    Variant("numpy_blas1", "numpy", layers="-", blas_threads=1),
    Variant("dense_fit", "fit"),
    Variant("manual_fit", "fit", layers="manual"),
    Variant("dense_fit_xla", "fit", jit=True),
    Variant("manual_fit_xla", "fit", layers="manual", jit=True),
    Variant("dense_fit_spe", "fit", steps_per_execution=0),
    Variant("dense_fit_spe_xla", "fit", jit=True, steps_per_execution=0),
    Variant("dense_fit_tfdata", "fit", pipeline="tf.data"),
    Variant("dense_fit_runs", "fit", pipeline="runs"),
    Variant("dense_fit_runs_spe", "fit", pipeline="runs", steps_per_execution=0),
    Variant("dense_epoch_fn", "epoch_fn"),
    Variant("manual_epoch_fn", "epoch_fn", layers="manual"),
    Variant("dense_epoch_fn_xla", "epoch_fn", jit=True),
    Variant("manual_epoch_fn_xla", "epoch_fn", layers="manual", jit=True),
    Variant("dense_fit_spe_bf16", "fit", steps_per_execution=0, precision=BF16),
    Variant("dense_epoch_fn_bf16", "epoch_fn", precision=BF16),
    Variant("dense_epoch_fn_xla_bf16", "epoch_fn", jit=True, precision=BF16),
)
# Hand-written layers vs Dense, compared under the same driver (goal: within 5 %).
MANUAL_VS_DENSE = (("manual_fit", "dense_fit"), ("manual_fit_xla", "dense_fit_xla"),
                   ("manual_epoch_fn", "dense_epoch_fn"), ("manual_epoch_fn_xla", "dense_epoch_fn_xla"))
# bf16 vs float32, same driver: speed, and whether the result changes (dw, loss after epoch 1).
BF16_VS_FLOAT32 = (("dense_fit_spe_bf16", "dense_fit_spe"), ("dense_epoch_fn_bf16", "dense_epoch_fn"),
                   ("dense_epoch_fn_xla_bf16", "dense_epoch_fn_xla"))


def step_flops(batch, hidden=HIDDEN):
    """FLOPs of one training step, by GEMM: {name: (flops, (m, k, n), transpose_a)} for `a @ b` of (m,k)@(k,n).

    Forward x@W1 and h@W2; backward dW2 = h^T dlogits, dh = dlogits W2^T, dW1 = x^T dh. The input gradient
    dx = dh W1^T is never needed, so it is not counted (and no implementation computes it).
    """
    shapes = {
        "x@W1": ((batch, INPUT_DIM, hidden), False),
        "h@W2": ((batch, hidden, NUM_CLASSES), False),
        "h^T@dlogits": ((hidden, batch, NUM_CLASSES), True),
        "dlogits@W2^T": ((batch, NUM_CLASSES, hidden), False),
        "x^T@dh": ((INPUT_DIM, batch, hidden), True),
    }
    return {name: (2 * m * k * n, (m, k, n), trans) for name, ((m, k, n), trans) in shapes.items()}


def epoch_flops(n_samples, batch, hidden=HIDDEN):
    return sum(f for f, _, _ in step_flops(batch, hidden).values()) * (n_samples // batch)


def summarize(values):
    """median, min, max of a list of numbers (None for an empty list)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------

def load_training_data(data_dir, max_samples, seed):
    """notMNIST training images as (N, 784) float32 in [0, 1] and int labels, N a multiple of 256 (or of 32).

    Falls back to uniform random data of the same shape when the dataset cannot be loaded. Returns
    (x, y, description). Truncating to whole batches keeps every batch full, so XLA compiles one shape and
    every batch size sees the same samples.
    """
    from tfnets.data import load_notmnist

    try:
        splits = load_notmnist(data_dir)
        x, y = splits.x_train.reshape(len(splits.x_train), -1).astype(np.float32), splits.y_train
        source = f"notMNIST training split from {splits.source}"
    except (TfnetsError, OSError) as err:
        rng = np.random.default_rng(seed)
        n = max_samples or 5120
        x = rng.random((n, INPUT_DIM), dtype=np.float32)
        y = rng.integers(0, NUM_CLASSES, n)
        source = f"RANDOM data of the notMNIST shape (notMNIST not loadable: {str(err).splitlines()[0]})"
    if max_samples:
        x, y = x[:max_samples], y[:max_samples]
    unit = 256 if len(x) >= 256 else 32
    n = len(x) // unit * unit
    require(n > 0, f"need at least 32 training samples, got {len(x)}")
    return np.ascontiguousarray(x[:n]), y[:n].astype(np.int32), f"{source}; first {n} samples (whole batches)"


# ---------------------------------------------------------------------------------------------------------------
# Trainers: `epochs(k)` trains k epochs and returns the seconds (the first call also traces/compiles)
# ---------------------------------------------------------------------------------------------------------------

class NumpyTrainer:
    def __init__(self, x, y, batch, init_params, learning_rate, blas_threads=0):
        from tfnets.reference import NumpyMLP

        self.x, self.y, self.batch, self.lr = x, y, batch, learning_rate
        self.blas_threads = blas_threads
        self.model = NumpyMLP(hidden_units=init_params["W1"].shape[1])
        self.model.set_params(init_params)

    def epochs(self, k):
        with _blas_limit(self.blas_threads):
            start = time.perf_counter()
            for _ in range(k):
                for s in range(0, len(self.x), self.batch):
                    self.model.train_step(self.x[s:s + self.batch], self.y[s:s + self.batch], self.lr, MOMENTUM)
            return time.perf_counter() - start

    def weights(self):
        p = self.model.params
        return [p["W1"], p["b1"], p["W2"], p["b2"]]


def build_mlp(layers, init_params, precision="float32"):
    """The 784-1000-10 MLP with Keras Dense or ManualDense layers, weights copied from `init_params`.

    precision "float32" leaves the dtype to the global Keras policy. Any other value is a Keras dtype policy
    (e.g. "mixed_bfloat16") given to the layers themselves, so that nothing global changes and the other
    variants stay float32; a float32 `Activation("linear")` then casts the logits to float32 so that the
    softmax cross-entropy is computed in float32 (Keras' mixed-precision advice). The variables stay float32.
    """
    import keras

    from tfnets.layers import ManualDense

    layer = ManualDense if layers == "manual" else keras.layers.Dense
    dtype = {} if precision == "float32" else {"dtype": keras.DTypePolicy(precision)}
    hidden = init_params["W1"].shape[1]
    stack = [keras.Input((INPUT_DIM,)), layer(hidden, activation="relu", **dtype), layer(NUM_CLASSES, **dtype)]
    if dtype:
        stack.append(keras.layers.Activation("linear", dtype="float32", name="logits_float32"))
    model = keras.Sequential(stack)
    model.set_weights([init_params["W1"], init_params["b1"], init_params["W2"], init_params["b2"]])
    return model


def mlp_loss(layers):
    import keras

    from tfnets.losses import SoftmaxCrossEntropy

    if layers == "manual":
        return SoftmaxCrossEntropy()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class _EpochClock:
    """A Keras callback: wall time from the first epoch's start to the last epoch's end (excludes fit's setup)."""

    def __new__(cls):
        import keras

        class Clock(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.begin = self.end = None

            def on_epoch_begin(self, epoch, logs=None):
                if self.begin is None:
                    self.begin = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.end = time.perf_counter()

        return Clock()


class FitTrainer:
    def __init__(self, variant, x, y, batch, init_params, learning_rate):
        import tensorflow as tf

        from tfnets.optim import SGDMomentum

        self.variant, self.batch, self.x, self.y = variant, batch, x, y
        self.model = build_mlp(variant.layers, init_params, variant.precision)
        spe = variant.steps_per_execution or len(x) // batch
        self.model.compile(optimizer=SGDMomentum.from_notmnist_form(learning_rate, MOMENTUM),
                           loss=mlp_loss(variant.layers), jit_compile=variant.jit, steps_per_execution=spe)
        if variant.pipeline == "tf.data":
            self.dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).prefetch(tf.data.AUTOTUNE)
        self.clock = _EpochClock()

    def _inputs(self, k):
        if self.variant.pipeline == "tf.data":
            return dict(x=self.dataset, shuffle=False)
        if self.variant.pipeline == "runs":
            from tfnets.runs import epoch_dataset

            # Built per call (it spans exactly the epochs of this fit), outside the timed epochs.
            return dict(x=epoch_dataset(self.x, self.y, self.batch, seed=0, first_epoch=0, last_epoch=k,
                                        shuffle=False), steps_per_epoch=len(self.x) // self.batch, shuffle=False)
        return dict(x=self.x, y=self.y, batch_size=self.batch, shuffle=False)

    def epochs(self, k):
        callbacks = [self.clock]
        if self.variant.pipeline == "runs":
            from tfnets.runs import _NanGuard

            # The apps' per-batch NaN check (it reads the loss after every execution, so it syncs).
            callbacks.append(_NanGuard(None, "bench"))
        self.model.fit(**self._inputs(k), epochs=k, verbose=0, callbacks=callbacks)
        return self.clock.end - self.clock.begin

    def weights(self):
        return self.model.get_weights()


class EpochFnTrainer:
    """A custom training loop: one call of a compiled `tf.function` trains a whole epoch (a `tf.range` loop)."""

    def __init__(self, variant, x, y, batch, init_params, learning_rate):
        import tensorflow as tf

        from tfnets.optim import SGDMomentum

        self.model = build_mlp(variant.layers, init_params, variant.precision)
        self.optimizer = SGDMomentum.from_notmnist_form(learning_rate, MOMENTUM)
        self.optimizer.build(self.model.trainable_variables)
        loss_fn = mlp_loss(variant.layers)
        steps = len(x) // batch
        # (steps, batch, 784): batch i is a cheap slice along the first axis.
        self.xs = tf.constant(x.reshape(steps, batch, -1))
        self.ys = tf.constant(y.reshape(steps, batch))
        model, optimizer = self.model, self.optimizer

        @tf.function(jit_compile=variant.jit)
        def train_epoch(xs, ys):
            loss = tf.constant(0.0)
            for i in tf.range(steps):
                with tf.GradientTape() as tape:
                    loss = loss_fn(ys[i], model(xs[i], training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply(grads, model.trainable_variables)
            return loss

        self.train_epoch = train_epoch

    def epochs(self, k):
        start = time.perf_counter()
        for _ in range(k):
            loss = self.train_epoch(self.xs, self.ys)
        float(loss)  # wait for the result
        return time.perf_counter() - start

    def weights(self):
        return self.model.get_weights()


class _blas_limit:
    """Context manager: limit OpenBLAS threads (threadpoolctl) when `threads` > 0, else do nothing."""

    def __init__(self, threads):
        self.threads, self.limiter = threads, None

    def __enter__(self):
        if self.threads:
            from threadpoolctl import threadpool_limits

            self.limiter = threadpool_limits(self.threads, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self.limiter is not None:
            self.limiter.restore_original_limits()


def make_trainer(variant, x, y, batch, init_params, learning_rate):
    if variant.driver == "numpy":
        return NumpyTrainer(x, y, batch, init_params, learning_rate, variant.blas_threads)
    if variant.driver == "fit":
        return FitTrainer(variant, x, y, batch, init_params, learning_rate)
    return EpochFnTrainer(variant, x, y, batch, init_params, learning_rate)


# ---------------------------------------------------------------------------------------------------------------
# 1 + 2: the MLP table and the GEMM limit
# ---------------------------------------------------------------------------------------------------------------

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
        for label, jit, dtype in (("tf", False, tf.float32), ("tf_xla", True, tf.float32),
                                  ("tf_bf16", False, tf.bfloat16), ("tf_xla_bf16", True, tf.bfloat16)):
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


def initial_params(seed, hidden=HIDDEN):
    from tfnets.reference import NumpyMLP

    return NumpyMLP(hidden_units=hidden, seed=seed).get_params()


def interleaved_order(names, repeat):
    """The order of the variants in repeat number `repeat`: rotated every repeat so that nobody always goes
    first, with each hand-written variant and each bf16 variant kept next to its float32 Dense twin (the twin
    sits in the middle of its group; the group's order is reversed every other repeat)."""
    manual = {d: m for m, d in MANUAL_VS_DENSE if m in names and d in names}
    bf16 = {d: b for b, d in BF16_VS_FLOAT32 if b in names and d in names}
    grouped = set(manual.values()) | set(bf16.values())
    units = []
    for name in names:
        if name in grouped:
            continue
        before = [manual[name]] if name in manual else []
        after = [bf16[name]] if name in bf16 else []
        units.append(before + [name] + after)
    shift = repeat % len(units)
    units = units[shift:] + units[:shift]
    return [name for unit in units for name in (unit[::-1] if repeat % 2 else unit)]


def run_mlp(x, y, batch_sizes, variants, repeats, epochs_per_repeat, seed, learning_rate, log):
    """Interleaved timings of every variant at every batch size. Returns a list of result dicts.

    Every trainer starts from the same initial weights; its first epoch (tracing/compiling) is untimed and
    ends with the weight comparison against the NumPy reference after that same epoch, and with the
    training-set loss and accuracy of the weights it reached (NumPy, float32).
    """
    import keras

    global_policy = keras.mixed_precision.global_policy().name
    init = initial_params(seed)
    results = []
    for batch in batch_sizes:
        log(f"MLP batch {batch}: building and warming up {len(variants)} variants")
        trainers, first_epoch = {}, {}
        for variant in variants:
            trainers[variant.name] = make_trainer(variant, x, y, batch, init, learning_rate)
            first_epoch[variant.name] = trainers[variant.name].epochs(1)
        if "numpy" in trainers:
            ref_weights = trainers["numpy"].weights()
        else:
            reference = NumpyTrainer(x, y, batch, init, learning_rate)
            reference.epochs(1)
            ref_weights = reference.weights()
        deviation = {name: max(float(np.max(np.abs(np.asarray(w, np.float32) - r)))
                               for w, r in zip(trainer.weights(), ref_weights))
                     for name, trainer in trainers.items() if name != "numpy"}
        after_epoch1 = {name: evaluate_weights(trainer.weights(), x, y) for name, trainer in trainers.items()}
        times = {name: [] for name in trainers}
        for r in range(repeats):
            for name in interleaved_order(list(trainers), r):
                times[name].append(trainers[name].epochs(epochs_per_repeat))
        for variant in variants:
            rates = [epochs_per_repeat * len(x) / t for t in times[variant.name]]
            results.append({"batch": batch, "variant": variant.name, "layers": variant.layers, "xla": variant.jit,
                            "driver": variant.description, "samples_per_s": summarize(rates),
                            "precision": global_policy if variant.precision == "float32" else variant.precision,
                            "loss_after_epoch1": after_epoch1[variant.name][0],
                            "train_accuracy_after_epoch1": after_epoch1[variant.name][1],
                            "first_epoch_s": first_epoch[variant.name], "seconds": times[variant.name],
                            "epochs_per_repeat": epochs_per_repeat,
                            "max_abs_dw_vs_numpy": deviation.get(variant.name)})
        log(f"MLP batch {batch}: done")
    return results


def evaluate_weights(weights, x, y):
    """(mean cross-entropy, accuracy) on (x, y) of the MLP with weights [W1, b1, W2, b2], computed by the
    NumPy reference in float32 (whatever precision trained them: bf16 variants keep float32 master weights)."""
    from tfnets.reference import NumpyMLP

    w1, b1, w2, b2 = (np.asarray(w, np.float32) for w in weights)
    mlp = NumpyMLP(hidden_units=w1.shape[1])
    mlp.set_params({"W1": w1, "b1": b1, "W2": w2, "b2": b2})
    return mlp.evaluate(x, y)


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


# ---------------------------------------------------------------------------------------------------------------
# 3: the CNN
# ---------------------------------------------------------------------------------------------------------------

def cnn_builder():
    """`apps.notmnist_cnn.build_model` if importable, else a local copy of the same architecture; and a note."""
    try:
        from apps.notmnist_cnn import build_model

        return build_model, "apps.notmnist_cnn.build_model"
    except ImportError as err:
        return _local_cnn, f"local copy of the assignment CNN (apps.notmnist_cnn not importable: {err})"


def _local_cnn(l2=0.0, keep_prob=1.0, seed=0, jit_compile=False):
    import keras

    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, padding="same"), keras.layers.ReLU(), keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(784),
        keras.layers.Dropout(1.0 - keep_prob, seed=seed), keras.layers.ReLU(), keras.layers.Dense(10),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  jit_compile=jit_compile)
    return model


def run_cnn(x, y, batch, repeats, seed, latency_calls, log):
    """CNN training throughput (fit, +-XLA) and SavedModel inference latency/throughput. Returns (rows, note)."""
    import tensorflow as tf

    build, note = cnn_builder()
    images = x.reshape(-1, 28, 28, 1)
    rows = []
    model = None
    for jit in (False, True):
        log(f"CNN training, XLA {'on' if jit else 'off'}")
        model = build(l2=0.0, keep_prob=1.0, seed=seed, jit_compile=jit)
        clock = _EpochClock()
        fit = dict(x=images, y=y, batch_size=batch, shuffle=False, verbose=0, callbacks=[clock])
        model.fit(**fit, epochs=1)  # trace / compile
        seconds = []
        for _ in range(repeats):
            model.fit(**fit, epochs=1)
            seconds.append(clock.end - clock.begin)
        rows.append({"part": f"training, fit, batch {batch}, XLA {'on' if jit else 'off'}",
                     "samples_per_s": summarize([len(images) / s for s in seconds]),
                     "epoch_s": summarize(seconds), "samples": len(images)})
    log("CNN SavedModel inference")
    with tempfile.TemporaryDirectory(prefix="tfnets-bench-") as tmp:
        model.export(str(Path(tmp) / "serving"), format="tf_saved_model", verbose=False)
        loaded = tf.saved_model.load(str(Path(tmp) / "serving"))
        serve = loaded.signatures["serving_default"]
        input_name = next(iter(serve.structured_input_signature[1]))

        def call(batch_images):
            return serve(**{input_name: batch_images})["output_0"].numpy()

        one = tf.constant(images[:1])
        for _ in range(5):
            call(one)
        latencies = []
        for _ in range(latency_calls):
            start = time.perf_counter()
            call(one)
            latencies.append((time.perf_counter() - start) * 1e3)
        rows.append({"part": "SavedModel inference, batch 1", "latency_ms": summarize(latencies)})
        big = tf.constant(np.resize(images, (256, 28, 28, 1)))
        call(big)
        rates = []
        for _ in range(max(repeats, 10)):
            start = time.perf_counter()
            call(big)
            rates.append(256 / (time.perf_counter() - start))
        rows.append({"part": "SavedModel inference, batch 256", "samples_per_s": summarize(rates)})
    return rows, note


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------

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
        rows.append({
            "batch": r["batch"], "variant": r["variant"], "layers": r["layers"], "XLA": "on" if r["xla"] else "off",
            "precision": r.get("precision", "float32"),
            "how": r["driver"], "samples/s (median)": f"{s['median']:,.0f}", "min-max": _spread(s),
            "x NumPy": f"{r['x_numpy']:.2f}" if r.get("x_numpy") else "",
            "GFLOP/s": f"{r['gflops']:.1f}", "% of GEMM limit": limit,
            "max abs dw vs NumPy (1 epoch)": "-" if dw is None else f"{dw:.1e}",
            "loss after epoch 1": f"{r['loss_after_epoch1']:.4f}" if "loss_after_epoch1" in r else "",
            "train acc after epoch 1": (f"{100 * r['train_accuracy_after_epoch1']:.1f} %"
                                        if "train_accuracy_after_epoch1" in r else ""),
        })
    return markdown_table(rows)


def gemm_table(gemm_rows, n_samples):
    rows = [{"batch": r["batch"], "GEMM": r["gemm"], "shape": r["shape"],
             "np.matmul GFLOP/s": f"{r['numpy']:.3g}", "tf.linalg.matmul": f"{r['tf']:.3g}",
             "tf XLA": f"{r['tf_xla']:.3g}", "tf bf16": f"{r['tf_bf16']:.3g}",
             "tf XLA bf16": f"{r['tf_xla_bf16']:.3g}"} for r in gemm_rows]
    summary = []
    for batch in dict.fromkeys(r["batch"] for r in gemm_rows):
        seconds, gflops = gemm_limit(gemm_rows, n_samples, batch)
        bf16_seconds, bf16_gflops = gemm_limit(gemm_rows, n_samples, batch, "best_bf16")
        summary.append({"batch": batch, "float32 GEMM-only epoch time (s)": f"{seconds:.4f}",
                        "float32 limit GFLOP/s (best library per GEMM)": f"{gflops:.1f}",
                        "bf16 GEMM-only epoch time (s)": f"{bf16_seconds:.4f}",
                        "bf16 limit GFLOP/s (tf or XLA per GEMM)": f"{bf16_gflops:.1f}"})
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
    """The issue's goals, evaluated on the medians (reported, never asserted); separately for the float32
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
            lines.append(f"- hand-written vs Dense speed at batch {batch} (median of back-to-back pairs): "
                         + "; ".join(parts))
    for precision, rows in groups:
        full = [r for r in rows if r["batch"] == batches[-1]]
        if full:
            best = max(full, key=lambda r: r["fraction_of_gemm_limit"])
            verdict = "met" if best["fraction_of_gemm_limit"] >= 0.7 else "NOT met"
            limit = "the bf16 GEMM limit" if precision == BF16 else "the float32 GEMM limit"
            lines.append(f"- [{precision}] full batch >= 70 % of {limit}: best is {best['variant']} at "
                         f"{100 * best['fraction_of_gemm_limit']:.0f} %: {verdict}")
    for batch in batches:
        parts = []
        for low, twin in BF16_VS_FLOAT32:
            if (batch, low) in by and (batch, twin) in by:
                a, b = by[(batch, low)], by[(batch, twin)]
                parts.append(f"{low} is {paired_speed_ratio(a, b):.2f}x {twin}'s speed, max dw vs NumPy "
                             f"{a['max_abs_dw_vs_numpy']:.1e} vs {b['max_abs_dw_vs_numpy']:.1e}, loss after epoch 1 "
                             f"{a['loss_after_epoch1']:.4f} vs {b['loss_after_epoch1']:.4f}")
        if parts:
            lines.append(f"- bf16 vs float32 twin at batch {batch} (speed: median of back-to-back pairs): "
                         + "; ".join(parts))
    return "\n".join(lines) + "\n"


def _speed_goal(rows, by, batch, target, label, precision):
    """The "TF >= target x NumPy" goal line for the best of `rows` at this batch size (a list of 0 or 1 line)."""
    best = max((r for r in rows if r["batch"] == batch and r.get("x_numpy")),
               key=lambda r: r["x_numpy"], default=None)
    if best is None:
        return []
    verdict = "met" if best["x_numpy"] >= target else "NOT met"
    line = (f"- [{precision}] TF >= {target}x NumPy at {label} ({batch}): best is {best['variant']} at "
            f"{best['x_numpy']:.2f}x: {verdict}")
    single = by.get((batch, "numpy_blas1"))
    if single:
        ratio = best["samples_per_s"]["median"] / single["samples_per_s"]["median"]
        line += (f"; against NumPy with 1 BLAS thread (numpy_blas1) {ratio:.2f}x: "
                 f"{'met' if ratio >= target else 'NOT met'}")
    return [line]


def environment(intra, inter):
    import keras
    import tensorflow as tf

    info = {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "tf_intra_op_threads": intra, "tf_inter_op_threads": inter,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: oneDNN on by default)"),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
            "op_determinism": bool(_determinism_enabled()), "gpus": [d.name for d in _gpus()]}
    try:
        from threadpoolctl import threadpool_info

        info["numpy_blas"] = [{k: p.get(k) for k in ("internal_api", "num_threads", "architecture", "version")}
                              for p in threadpool_info() if p.get("user_api") == "blas"]
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
    return (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads())


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
    parser = ArgumentParser(prog="python -m tfnets.bench",
                            description="Training throughput of the notMNIST MLP and CNN against the NumPy "
                                        "reference and the machine's GEMM limit.")
    parser.add_argument("--data-dir", default=None,
                        help="dataset folder with notMNIST (default: $TFNETS_DATA_DIR, else ~/.cache/tfnets/data); "
                             "random data of the same shape is used when it cannot be loaded")
    parser.add_argument("--out", default="runs", help="root folder of outputs (default runs/; writes <out>/bench/<id>)")
    parser.add_argument("--run-id", default=None, help="name of the output folder (default: a UTC timestamp)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 512 samples, 2 repeats, fewer GEMM timings, a short CNN part")
    parser.add_argument("--repeats", type=positive_int, default=None, help="timed repeats per variant (default 7)")
    parser.add_argument("--epochs-per-repeat", type=positive_int, default=None,
                        help="epochs in one timed repeat (default 1; 3 for the full batch, which is one step)")
    parser.add_argument("--batch-sizes", type=batch_sizes, default=[32, 256, FULL],
                        help="comma-separated, 'full' = the whole training set (default 32,256,full)")
    parser.add_argument("--max-samples", type=positive_int, default=None,
                        help="use at most this many training samples (default: all; 512 with --quick)")
    parser.add_argument("--variants", default=None,
                        help="comma-separated subset of: " + ", ".join(v.name for v in VARIANTS))
    parser.add_argument("--no-cnn", dest="cnn", action="store_false", help="skip the CNN part")
    parser.add_argument("--mixed-precision-table", choices=("auto", "always", "never"), default="auto",
                        help="the MLP table again with mixed_float16: auto = only when a GPU is visible")
    parser.add_argument("--intra-op-threads", type=int, default=None,
                        help="TF intra-op thread pool (default: TF's choice, one per core)")
    parser.add_argument("--inter-op-threads", type=int, default=None,
                        help="TF inter-op thread pool (default: TF's choice)")
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
    max_samples = args.max_samples or (512 if args.quick else None)
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
        require(n % b == 0, f"--batch-sizes: {b} does not divide the {n} training samples used; use a divisor "
                            f"(or --max-samples a multiple of it)")
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
        cnn_rows, cnn_note = run_cnn(x[:cnn_n], y[:cnn_n], 32, 1 if args.quick else 5, args.seed,
                                     latency_calls=10 if args.quick else 200, log=log)
    gpus = _gpus()
    mixed, mixed_note = None, None
    if args.mixed_precision_table == "always" or (args.mixed_precision_table == "auto" and gpus):
        log("mixed precision (mixed_float16) MLP table")
        mixed = mlp_section("mixed_float16")
        add_ratios(mixed, gemm_rows, n)
        mixed_note = f"GPU(s): {[d.name for d in gpus]}" if gpus else "no GPU: mixed_float16 run on the CPU"
    else:
        mixed_note = ("GPU section skipped: no GPU visible (tf.config.list_physical_devices('GPU') is empty)"
                      if not gpus else "skipped (--mixed-precision-table never)")
    load_after = os.getloadavg()

    result = {"run_id": run_id, "data": data_note, "n_train": n, "hidden": HIDDEN, "learning_rate": LEARNING_RATE,
              "momentum": MOMENTUM, "repeats": repeats, "quick": args.quick, "seed": args.seed,
              "environment": environment(intra, inter),
              "load_average_before": load_before, "load_average_after": load_after,
              "wall_seconds": time.time() - started, "gemm": gemm_rows, "mlp": mlp,
              "cnn": {"builder": cnn_note, "rows": cnn_rows}, "mixed_precision": {"note": mixed_note, "mlp": mixed}}
    markdown = render(result)
    atomic.write_json(out_dir / "bench.json", result)
    atomic.write_text(out_dir / "bench.md", markdown)
    print(markdown)
    log(f"wrote {out_dir / 'bench.md'} and bench.json")
    return result


def render(result):
    env = result["environment"]
    head = (f"# Benchmark {result['run_id']}\n\n"
            f"- data: {result['data']}\n"
            f"- MLP 784-{result['hidden']}-10, momentum SGD lr={result['learning_rate']} gamma={result['momentum']}, "
            f"{result['repeats']} interleaved repeats per variant; median and min-max over repeats\n"
            f"- TF {env['tensorflow']}, Keras {env['keras']}, NumPy {env['numpy']} ({env['numpy_blas']}); "
            f"{env['cpu_count']} CPUs; TF threads intra={env['tf_intra_op_threads']} "
            f"inter={env['tf_inter_op_threads']} (0 = TF default); oneDNN: {env['TF_ENABLE_ONEDNN_OPTS']}; "
            f"op determinism: {env['op_determinism']}\n"
            f"- load average before {tuple(round(v, 2) for v in result['load_average_before'])}, after "
            f"{tuple(round(v, 2) for v in result['load_average_after'])} (other processes share the machine: "
            f"compare ratios within this run); wall time {result['wall_seconds']:.0f} s\n")
    parts = [head,
             "## MLP training throughput\n\nGFLOP/s count N*(4*784*H + 6*H*10) per epoch (the work a step needs); "
             "'% of GEMM limit' = time the step's GEMMs need at the best measured speed / actual time: float32 "
             "rows against the float32 GEMM limit, mixed_bfloat16 rows against the bf16 GEMM limit (marked "
             "'bf16', with their % of the float32 limit in brackets). 'max abs dw' compares weights after one "
             "epoch from identical initial weights with NumPy's (bf16 rounds to 8 mantissa bits, so its dw is "
             "larger: it changes results); 'loss/train acc after epoch 1' evaluate those weights on the training "
             "set with NumPy in float32 (does the variant still train as well?).\n\n"
             + mlp_table(result["mlp"]),
             "## Goals (from the medians above; reported, not asserted; [float32] and [mixed_bfloat16] "
             "variants judged separately)\n\n" + goals(result["mlp"]),
             "## GEMM limit (matmul throughput for the MLP's GEMM shapes)\n\n" + gemm_table(result["gemm"],
                                                                                            result["n_train"])]
    cnn = result["cnn"]
    parts.append(f"## notMNIST CNN\n\nmodel: {cnn['builder']}\n\n" + (cnn_table(cnn["rows"]) if cnn["rows"] else ""))
    mixed = result["mixed_precision"]
    parts.append("## GPU: mixed precision\n\n" + mixed["note"] + "\n\n"
                 + (mlp_table(mixed["mlp"]) if mixed["mlp"] else ""))
    return "\n".join(parts)


if __name__ == "__main__":
    exit_with(main)
