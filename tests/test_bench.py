"""`python -m benchmarks`: the table has every row, the variants train the same network.

No timing is asserted (the machine is shared and noisy); the benchmark's own correctness check (weights
after one epoch vs the independent NumPy reference) is.
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench, mlp
from tfnets.errors import DataError
from tfnets.experiment.cli import run_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("bench")
    result = bench.main(["--quick", "--out", str(out), "--run-id", "t", "--data-dir", str(data_dir)])
    return out / "bench" / "t", result


def _table_rows(markdown, heading):
    """The data rows (lists of cells) of the first markdown table after `heading`."""
    section = markdown.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|---"):
            continue
        if line.startswith("| "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[1:]  # drop the header


@pytest.mark.slow
@pytest.mark.bf16  # the --quick table includes the bf16 variants
def test_quick_writes_every_row(quick_run):
    folder, result = quick_run
    markdown = (folder / "bench.md").read_text()
    saved = json.loads((folder / "bench.json").read_text())
    assert saved["mlp"] == json.loads(json.dumps(result["mlp"]))
    assert "notMNIST training split" in saved["data"]
    n = saved["n_train"]
    batches = sorted({32, 256, n})  # --quick: n = 256, so its full batch is the 256 one

    mlp_rows = _table_rows(markdown, "## MLP training throughput")
    got = {(int(r[0]), r[1]) for r in mlp_rows}
    assert got == {(b, v.name) for b in batches for v in mlp.VARIANTS}
    assert len(mlp_rows) == len(got)

    gemm_rows = _table_rows(markdown, "## GEMM limit")
    assert {(int(r[0]), r[1]) for r in gemm_rows} == {(b, g) for b in batches for g in mlp.step_flops(1)}
    for row in saved["gemm"]:
        assert min(row["numpy"], row["tf"], row["tf_xla"], row["tf_bf16"], row["tf_xla_bf16"]) > 0

    cnn_rows = [r[0] for r in _table_rows(markdown, "## notMNIST CNN")]
    assert cnn_rows == [
        "training, fit, batch 32, XLA off",
        "training, fit, batch 32, XLA on",
        "SavedModel inference, batch 1",
        "SavedModel inference, batch 256",
    ]
    assert "apps.notmnist_cnn.build_model" in markdown
    assert "## Goals" in markdown and "GEMM limit" in markdown
    goals = markdown.split("## Goals", 1)[1].split("\n## ", 1)[0]
    for precision in ("float32", "mixed_bfloat16"):  # verdicts for each precision, separately
        assert f"[{precision}] TF >= 1.5x NumPy" in goals and f"[{precision}] TF >= 3.0x NumPy" in goals
        assert f"[{precision}] full batch >= 70 %" in goals
    assert goals.count("bf16 vs float32 twin at batch") == len(batches)
    assert "## GPU: mixed precision" in markdown
    if not saved["environment"]["gpus"]:
        assert "GPU section skipped" in markdown
    assert saved["environment"]["op_determinism"] is False  # XLA would be silently dropped otherwise


@pytest.mark.slow
@pytest.mark.bf16
def test_every_tf_variant_trains_like_the_numpy_reference(quick_run):
    # One epoch from identical weights: the float32 TF variants (Dense, hand-written layers, fit, epoch-in-one-
    # function, XLA) must end where the independent NumPy implementation ends, up to float32 rounding. The
    # bf16 variants must visibly differ (else bf16 was not used: float32 leaked in) yet stay close.
    _, result = quick_run
    twin = dict(mlp.BF16_VS_FLOAT32)
    by = {(r["batch"], r["variant"]): r for r in result["mlp"]}
    for row in result["mlp"]:
        batch, name, deviation = row["batch"], row["variant"], row["max_abs_dw_vs_numpy"]
        if name == "numpy":
            assert deviation is None
        elif name in twin:
            assert row["precision"] == "mixed_bfloat16"
            float32_deviation = by[(batch, twin[name])]["max_abs_dw_vs_numpy"]
            assert max(20 * float32_deviation, 1e-6) < deviation < 1e-2, (batch, name, deviation)
        else:
            assert row["precision"] == "float32"  # the bf16 policy did not leak into the float32 variants
            assert deviation < 1e-4, (batch, name, deviation)


@pytest.mark.slow
@pytest.mark.bf16
def test_bf16_trains_as_well_as_float32(quick_run):
    # Loss and accuracy after the first epoch, evaluated on the training set: float32 variants agree with the
    # NumPy reference's; bf16 ones land close to it (bf16 changes the bits, not how well the network trains).
    _, result = quick_run
    bf16 = {low for low, _ in mlp.BF16_VS_FLOAT32}
    for row in result["mlp"]:
        ref = next(r for r in result["mlp"] if r["batch"] == row["batch"] and r["variant"] == "numpy")
        loss, acc = row["loss_after_epoch1"], row["train_accuracy_after_epoch1"]
        if row["variant"] in bf16:
            assert loss == pytest.approx(ref["loss_after_epoch1"], rel=0.02), row["variant"]
            assert abs(acc - ref["train_accuracy_after_epoch1"]) <= 0.02, row["variant"]
        else:
            assert loss == pytest.approx(ref["loss_after_epoch1"], rel=1e-4), row["variant"]
    assert all(0 < r["loss_after_epoch1"] < np.log(10) + 0.5 for r in result["mlp"])


@pytest.mark.bf16
def test_bf16_mlp_computes_in_bf16_and_leaves_the_global_policy_alone():
    # Independent check of the bf16 forward pass against NumPy with every GEMM operand rounded to bfloat16
    # (ml_dtypes) and float32 accumulation. Kernels legitimately differ in the last bf16 bit by instruction set:
    # oneDNN with AVX512-BF16 rounds to nearest (and fuses the bias add), the Eigen kernels TF uses on CPUs
    # without AVX-512 truncate. So instead of bit equality, every value must be within bf16 rounding of the
    # reference: bf16 keeps 8 significant bits, so each rounding of a value v moves it by less than 2**-7 * |v|,
    # whatever the rounding mode.
    import keras
    import ml_dtypes

    init = mlp.initial_params(seed=1, hidden=64)
    rng = np.random.default_rng(1)
    init["b1"] = rng.normal(0, 0.1, init["b1"].shape).astype(np.float32)
    init["b2"] = rng.normal(0, 0.1, init["b2"].shape).astype(np.float32)
    x = rng.random((16, mlp.INPUT_DIM), dtype=np.float32)

    before = keras.mixed_precision.global_policy().name
    model = mlp.build_mlp("dense", init, "mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == before == "float32"
    assert [w.dtype for w in model.get_weights()] == [np.float32] * 4  # float32 master weights
    hidden_out = model.layers[0](x)
    assert hidden_out.dtype == "bfloat16"
    logits = model(x)
    assert logits.dtype == "float32"  # cast before the loss
    hidden_out, logits = np.asarray(hidden_out, np.float32), np.asarray(logits)

    def bf16(a):
        return np.asarray(a, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)

    eps = 2.0**-7  # bf16 spacing relative to the magnitude (8 significant bits)
    xq, w1, b1, w2, b2 = (bf16(v) for v in (x, init["W1"], init["b1"], init["W2"], init["b2"]))
    # Each layer rounds twice (after the GEMM, after the bias add; a fused kernel only once). Two correct
    # kernels each land within eps * (|z| + |z + b|) of the exact value, so they differ by at most twice that;
    # a difference in the hidden layer reaches the logits through |W2|.
    z1 = xq @ w1
    hidden = bf16(np.maximum(bf16(z1) + b1, 0))
    hidden_slack = 2 * eps * (np.abs(z1) + np.abs(z1 + b1))
    z2 = hidden @ w2
    expected = bf16(bf16(z2) + b2)
    logits_slack = hidden_slack @ np.abs(w2) + 2 * eps * (np.abs(z2) + np.abs(z2 + b2))
    assert np.all(np.abs(hidden_out - hidden) <= hidden_slack)
    assert np.all(np.abs(logits - expected) <= logits_slack)

    # Really bf16, not float32 with a bf16 label: every activation lies on the bf16 grid (a float32 result
    # almost never does), and the logits are further from the float32 forward pass than float32 rounding goes.
    exact = np.maximum(x @ init["W1"] + init["b1"], 0) @ init["W2"] + init["b2"]
    scale = float(np.abs(exact).max())
    assert np.array_equal(bf16(hidden_out), hidden_out) and np.array_equal(bf16(logits), logits)
    assert not np.array_equal(bf16(exact), exact)  # the grid test can tell float32 apart
    assert np.abs(logits - exact).max() > 1e-4 * scale
    assert np.asarray(mlp.build_mlp("dense", init)(x)) == pytest.approx(exact, abs=1e-5 * scale)


@pytest.mark.slow
@pytest.mark.bf16
def test_throughput_columns_follow_from_the_recorded_epoch_times(quick_run):
    # The bench records every timed call (`seconds`, each `epochs_per_repeat` epochs over `n_train` samples).
    # Rebuild the reported numbers from those raw times and the independent FLOP count of one training step
    # (forward + backward GEMMs: 4*784*H + 6*H*10 per sample), and check the saved table shows the same.
    folder, result = quick_run
    saved = json.loads((folder / "bench.json").read_text())
    n, hidden = saved["n_train"], saved["hidden"]
    by = {(r["batch"], r["variant"]): r for r in saved["mlp"]}

    def median_rate(row):
        assert len(row["seconds"]) == saved["repeats"] and min(row["seconds"]) > 0
        return statistics.median(row["epochs_per_repeat"] * n / s for s in row["seconds"])

    markdown = (folder / "bench.md").read_text()
    section = markdown.split("## MLP training throughput", 1)[1]
    header = next(line for line in section.splitlines() if line.startswith("| batch"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    cells = {(int(r[0]), r[1]): dict(zip(columns, r)) for r in _table_rows(markdown, "## MLP training throughput")}
    for row in saved["mlp"]:
        rate = median_rate(row)
        numpy_rate = median_rate(by[(row["batch"], "numpy")])
        assert row["samples_per_s"]["median"] == pytest.approx(rate)
        assert row["x_numpy"] == pytest.approx(rate / numpy_rate)
        assert row["gflops"] == pytest.approx(rate * (4 * 784 * hidden + 6 * hidden * 10) / 1e9)
        assert 0 < row["fraction_of_gemm_limit"] == pytest.approx(row["gflops"] / row["gemm_limit_gflops"])
        shown = cells[(row["batch"], row["variant"])]
        assert shown["x NumPy"] == f"{rate / numpy_rate:.2f}"
        assert shown["samples/s (median)"] == f"{rate:,.0f}"
    assert {cells[(b, "numpy")]["x NumPy"] for b, _ in cells} == {"1.00"}


def test_step_flops_are_the_gemms_of_backprop():
    # Independent count: forward 2*N*(784*H + H*10); backward dW2, dh (2*N*H*10 each) and dW1 (2*N*784*H).
    n, hidden = 32, 1000
    flops = mlp.step_flops(n, hidden)
    assert sum(f for f, _, _ in flops.values()) == n * (4 * 784 * hidden + 6 * hidden * 10)
    assert mlp.epoch_flops(5120, 256, hidden) == 20 * 256 * (4 * 784 * hidden + 6 * hidden * 10)


def test_random_data_fallback_is_labelled(monkeypatch):
    import tfnets.data

    def missing(data_dir=None):
        raise DataError("notMNIST not found in /nowhere; put notMNIST_small/ there")

    monkeypatch.setattr(tfnets.data, "load_notmnist", missing)
    x, y, note = mlp.load_training_data("/nowhere", 600, seed=0)
    assert x.shape == (512, 784) and x.dtype == np.float32 and y.shape == (512,)
    assert note.startswith("RANDOM data") and "/nowhere" in note


@pytest.mark.bf16
def test_mixed_precision_table_runs_on_cpu(tmp_path, data_dir):
    # The GPU section's code path, forced on the CPU with tiny settings.
    result = bench.main(
        [
            "--out",
            str(tmp_path),
            "--run-id",
            "mp",
            "--data-dir",
            str(data_dir),
            "--no-cnn",
            "--batch-sizes",
            "32",
            "--max-samples",
            "64",
            "--repeats",
            "1",
            "--variants",
            "numpy,dense_fit,manual_epoch_fn",
            "--mixed-precision-table",
            "always",
        ]
    )
    mixed = result["mixed_precision"]["mlp"]
    assert [r["variant"] for r in mixed] == ["numpy", "dense_fit", "manual_epoch_fn"]
    markdown = (tmp_path / "bench" / "mp" / "bench.md").read_text()
    assert len(_table_rows(markdown, "## GPU: mixed precision")) == 3
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-sizes", "0"], "positive integer"),
        (["--variants", "numpy,fastest"], "unknown --variants fastest"),
        (["--batch-sizes", "100", "--max-samples", "256"], "does not divide"),
    ],
)
def test_bad_flags_give_one_line_errors(flags, message, capsys, tmp_path, data_dir):
    code = run_main(
        bench.main, flags + ["--out", str(tmp_path), "--no-cnn", "--data-dir", str(data_dir)]
    )  # argparse's own errors included (exit 2)
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error:")
    assert not (tmp_path / "bench").exists()


def test_help():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "--quick" in done.stdout


def test_interleaving_keeps_twins_adjacent_and_rotates():
    names = [v.name for v in mlp.VARIANTS]
    firsts = set()
    for repeat in range(len(names)):
        order = mlp.interleaved_order(names, repeat)
        assert sorted(order) == sorted(names)
        for twin, dense in mlp.MANUAL_VS_DENSE + mlp.BF16_VS_FLOAT32:
            assert abs(order.index(twin) - order.index(dense)) == 1
        firsts.add(order[0])
    assert len(firsts) > len(names) // 2  # the first slot is shared around
