"""The notMNIST CNN of `apps.notmnist_cnn`: training throughput and SavedModel inference."""

import tempfile
import time
from pathlib import Path

import numpy as np

from apps.notmnist_cnn import build_model
from benchmarks.mlp import _EpochClock, summarize


def run_cnn(x, y, batch, repeats, seed, latency_calls, log):
    """CNN training throughput (fit, +-XLA) and SavedModel inference latency/throughput. Returns (rows, note)."""
    import tensorflow as tf

    note = "apps.notmnist_cnn.build_model"
    images = x.reshape(-1, 28, 28, 1)
    rows = []
    model = None
    for jit in (False, True):
        log(f"CNN training, XLA {'on' if jit else 'off'}")
        model = build_model(l2=0.0, keep_prob=1.0, seed=seed, jit_compile=jit)
        clock = _EpochClock()
        fit = dict(x=images, y=y, batch_size=batch, shuffle=False, verbose=0, callbacks=[clock])
        model.fit(**fit, epochs=1)  # trace / compile
        seconds = []
        for _ in range(repeats):
            model.fit(**fit, epochs=1)
            seconds.append(clock.end - clock.begin)
        rows.append(
            {
                "part": f"training, fit, batch {batch}, XLA {'on' if jit else 'off'}",
                "samples_per_s": summarize([len(images) / s for s in seconds]),
                "epoch_s": summarize(seconds),
                "samples": len(images),
            }
        )
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
