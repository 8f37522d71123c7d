"""`python -m tfnets.bench` / `apps.bench`: the table has every row, the variants train the same network.

No timing is asserted (the machine is shared and noisy); the benchmark's own correctness check (weights
after one epoch vs the independent NumPy reference) is.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfnets import bench
from tfnets.cli import run_main
from tfnets.errors import DataError

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


def test_quick_writes_every_row(quick_run):
    folder, result = quick_run
    markdown = (folder / "bench.md").read_text()
    saved = json.loads((folder / "bench.json").read_text())
    assert saved["mlp"] == json.loads(json.dumps(result["mlp"]))
    assert "notMNIST training split" in saved["data"]
    n = saved["n_train"]
    batches = [32, 256, n]

    mlp_rows = _table_rows(markdown, "## MLP training throughput")
    got = {(int(r[0]), r[1]) for r in mlp_rows}
    assert got == {(b, v.name) for b in batches for v in bench.VARIANTS}
    assert len(mlp_rows) == len(got)

    gemm_rows = _table_rows(markdown, "## GEMM limit")
    assert {(int(r[0]), r[1]) for r in gemm_rows} == {(b, g) for b in batches for g in bench.step_flops(1)}
    for row in saved["gemm"]:
        assert min(row["numpy"], row["tf"], row["tf_xla"]) > 0

    cnn_rows = [r[0] for r in _table_rows(markdown, "## notMNIST CNN")]
    assert cnn_rows == ["training, fit, batch 32, XLA off", "training, fit, batch 32, XLA on",
                        "SavedModel inference, batch 1", "SavedModel inference, batch 256"]
    assert "apps.notmnist_cnn.build_model" in markdown
    assert "## Goals" in markdown and "GEMM limit" in markdown
    assert "## GPU: mixed precision" in markdown
    if not saved["environment"]["gpus"]:
        assert "GPU section skipped" in markdown
    assert saved["environment"]["op_determinism"] is False  # XLA would be silently dropped otherwise


def test_every_tf_variant_trains_like_the_numpy_reference(quick_run):
    # One epoch from identical weights: the TF variants (Dense, hand-written layers, fit, epoch-in-one-
    # function, XLA) must end where the independent NumPy implementation ends, up to float32 rounding.
    _, result = quick_run
    deviations = {(r["batch"], r["variant"]): r["max_abs_dw_vs_numpy"] for r in result["mlp"]}
    for (batch, name), deviation in deviations.items():
        if name == "numpy":
            assert deviation is None
        else:
            assert deviation < 1e-4, (batch, name, deviation)


def test_ratios_are_relative_to_numpy(quick_run):
    _, result = quick_run
    for row in result["mlp"]:
        numpy_row = next(r for r in result["mlp"] if r["batch"] == row["batch"] and r["variant"] == "numpy")
        expected = row["samples_per_s"]["median"] / numpy_row["samples_per_s"]["median"]
        assert row["x_numpy"] == pytest.approx(expected)
        assert 0 < row["fraction_of_gemm_limit"]


def test_step_flops_are_the_gemms_of_backprop():
    # Independent count: forward 2*N*(784*H + H*10); backward dW2, dh (2*N*H*10 each) and dW1 (2*N*784*H).
    n, hidden = 32, 1000
    flops = bench.step_flops(n, hidden)
    assert sum(f for f, _, _ in flops.values()) == n * (4 * 784 * hidden + 6 * hidden * 10)
    assert bench.epoch_flops(5120, 256, hidden) == 20 * 256 * (4 * 784 * hidden + 6 * hidden * 10)


def test_random_data_fallback_is_labelled(monkeypatch):
    import tfnets.data

    def missing(data_dir=None):
        raise DataError("notMNIST not found in /nowhere; put notMNIST_small/ there")

    monkeypatch.setattr(tfnets.data, "load_notmnist", missing)
    x, y, note = bench.load_training_data("/nowhere", 600, seed=0)
    assert x.shape == (512, 784) and x.dtype == np.float32 and y.shape == (512,)
    assert note.startswith("RANDOM data") and "/nowhere" in note


def test_mixed_precision_table_runs_on_cpu(tmp_path, data_dir):
    # The GPU section's code path, forced on the CPU with tiny settings.
    result = bench.main(["--out", str(tmp_path), "--run-id", "mp", "--data-dir", str(data_dir), "--no-cnn",
                         "--batch-sizes", "32", "--max-samples", "64", "--repeats", "1",
                         "--variants", "numpy,dense_fit,manual_epoch_fn", "--mixed-precision-table", "always"])
    mixed = result["mixed_precision"]["mlp"]
    assert [r["variant"] for r in mixed] == ["numpy", "dense_fit", "manual_epoch_fn"]
    markdown = (tmp_path / "bench" / "mp" / "bench.md").read_text()
    assert len(_table_rows(markdown, "## GPU: mixed precision")) == 3
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards


@pytest.mark.parametrize("flags, message", [
    (["--batch-sizes", "0"], "positive integer"),
    (["--variants", "numpy,fastest"], "unknown --variants fastest"),
    (["--batch-sizes", "100", "--max-samples", "256"], "does not divide"),
])
def test_bad_flags_give_one_line_errors(flags, message, capsys, tmp_path, data_dir):
    try:  # argparse errors exit from inside main; our own ConfigErrors come back as an exit code
        code = run_main(bench.main, flags + ["--out", str(tmp_path), "--no-cnn", "--data-dir", str(data_dir)])
    except SystemExit as stop:
        code = stop.code
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error:")
    assert not (tmp_path / "bench").exists()


def test_apps_alias_help():
    done = subprocess.run([sys.executable, "-m", "apps.bench", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "--quick" in done.stdout


def test_interleaving_keeps_twins_adjacent_and_rotates():
    names = [v.name for v in bench.VARIANTS]
    firsts = set()
    for repeat in range(len(names)):
        order = bench.interleaved_order(names, repeat)
        assert sorted(order) == sorted(names)
        for manual, dense in bench.MANUAL_VS_DENSE:
            assert abs(order.index(manual) - order.index(dense)) == 1
        firsts.add(order[0])
    assert len(firsts) > len(names) // 2  # the first slot is shared around
