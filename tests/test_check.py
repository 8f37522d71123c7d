"""`tfnets.check`: the correct example passes every check, each buggy example fails exactly the checks it should
with its hint, every manual layer and op of `tfnets.nn` passes, and the command's exit codes and one-line errors.

Shapes are tiny; the two-replica check (a child process with 2 logical CPU devices) runs once for the correct
example and for the layer that averages where it should sum (marked slow); elsewhere it is left out.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfnets.check import NAMES, check
from tfnets.check.__main__ import main
from tfnets.check.gradients import diagnose
from tfnets.check.target import load_object, parse_arg
from tfnets.errors import ConfigError
from tfnets.nn import layers as L
from tfnets.nn import ops

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "check"
DENSE = {"input_shape": "4,16", "kwargs": {"units": 8}}
NO_CHILD = [name for name in NAMES if name != "replicas"]


def _example(name):
    obj, _ = load_object(f"{EXAMPLES / name}")
    return obj


def _statuses(report):
    return {c.name: c.status for c in report.checks}


# ------------------------------------------------------------------ the examples of docs/check.md
@pytest.mark.bf16  # check 6 computes in bfloat16
def test_correct_example_passes_every_check_but_the_child_one():
    report = check(_example("good_dense.py:GoodDense"), **DENSE, only=NO_CHILD)
    assert report.ok, str(report)
    assert set(_statuses(report).values()) == {"PASS"}, str(report)


BUGGY = [
    ("transposed_dense.py:TransposedDense", {"gradient", "trains"}, "transposed weight gradient"),
    ("mean_dense.py:MeanDense", {"gradient", "batch"}, "kernel, bias: gradient is 1/4 of the numbers (1/batch size)"),
    ("no_bias_grad_dense.py:NoBiasGradDense", {"gradient"}, "bias: gradient is all zeros"),
    ("captured_dense.py:CapturedDense", {"gradient", "variables"}, "no gradient reaches bias"),
]


@pytest.mark.bf16
@pytest.mark.parametrize("name, failing, hint", BUGGY, ids=[b[0].split(":")[1] for b in BUGGY])
def test_buggy_example_fails_exactly_its_checks_with_the_hint(name, failing, hint):
    report = check(_example(name), **DENSE, only=NO_CHILD)
    assert not report.ok
    assert set(report.failed) == failing, str(report)
    assert hint in " ".join(report[c].hint for c in failing), str(report)
    assert all(status == "PASS" for c, status in _statuses(report).items() if c not in failing), str(report)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, status", [("good_dense.py:GoodDense", "PASS"), ("mean_dense.py:MeanDense", "FAIL")], ids=["sum", "mean"]
)
def test_two_replicas_tell_a_summed_gradient_from_an_averaged_one(name, status):
    report = check(_example(name), **DENSE, only="replicas")
    result = report["replicas"]
    assert result.status == status, str(report)
    if status == "FAIL":  # each replica averages over its half batch: the update is twice one device's
        assert result.value > 0.1 and "kernel, bias" in result.hint, str(report)
    else:
        assert result.value <= result.bound


def test_report_as_text_and_json():
    report = check(_example("no_bias_grad_dense.py:NoBiasGradDense"), **DENSE, only="forward,gradient")
    text = str(report)
    assert "2 gradient vs numbers" in text and "FAIL" in text and text.splitlines()[-1].startswith("FAILED: gradient")
    data = json.loads(report.to_json())
    assert data["ok"] is False
    gradient = data["checks"][1]
    assert gradient["status"] == "FAIL" and gradient["bound"] == 1e-6 and gradient["value"] > 0.1
    assert gradient["details"]["errors"]["kernel"] < 1e-6 < gradient["details"]["errors"]["bias"]


# ------------------------------------------------------------------ tfnets' own layers and ops
OWN = [
    (L.ManualDense, "4,6", {"units": 3, "activation": "relu"}),
    (L.ManualDense, "4,6", {"units": 3, "activation": "softmax", "use_bias": False}),
    (L.ManualEmbedding, "4,3:int10", {"input_dim": 10, "output_dim": 5}),
    (L.ManualDropout, "4,6", {"rate": 0.5, "seed": 1}),
    (L.ManualBatchNormalization, "4,6", {}),
    (L.ManualLayerNormalization, "4,6", {}),
    (ops.affine, ["4,6", "6,3", "3"], {}),
    (ops.relu, "4,6", {}),
    (ops.tanh, "4,6", {}),
    (ops.sigmoid, "4,6", {}),
    (ops.softmax, "4,6", {}),
    (ops.softmax_cross_entropy_per_example, ["4,5", "4:int5"], {}),
    (ops.softmax_cross_entropy, ["4,5", "4:int5"], {}),
    (ops.mean_squared_error, ["4,5", "4,5"], {}),
    (ops.mean_squared_error_per_example, ["4,5", "4,5"], {}),
    (ops.svm_loss, ["4,5", "4:int5"], {}),
    (ops.dropout, "4,6", {"rate": 0.5, "training": True, "seed": 3}),
    (ops.batch_norm, ["4,6", "6", "6", "6:const", "6:pos:const"], {"training": True}),
    (ops.batch_norm, ["4,6", "6", "6", "6:const", "6:pos:const"], {"training": False}),
    (ops.layer_norm, ["4,6", "6", "6"], {}),
    (ops.embedding_lookup, ["4,3:int10", "10,5"], {}),
]


@pytest.mark.bf16
@pytest.mark.parametrize("obj, shape, kwargs", OWN, ids=[f"{o.__name__}-{i}" for i, (o, _, _) in enumerate(OWN)])
def test_every_manual_layer_and_op_of_tfnets_nn_passes(obj, shape, kwargs):
    report = check(obj, shape, kwargs, only=NO_CHILD)
    assert report.ok, str(report)
    assert report["gradient"].status == "PASS" and report["gradient"].value < 1e-6, str(report)


def _dense_factory(units=3):
    return L.ManualDense(units, activation="tanh")


@pytest.mark.parametrize("kind", ["instance", "factory"])
def test_a_layer_instance_or_factory_is_checked_like_a_class(kind):
    obj = L.ManualDense(3, activation="tanh") if kind == "instance" else _dense_factory
    report = check(obj, "4,6", only="forward,gradient,variables")
    assert report.ok and "(layer)" in report.target, str(report)
    assert report["variables"].value == 2, str(report)  # kernel and bias, of a layer built with our weights


# ------------------------------------------------------------------ the hints and the input specs
def test_hints_name_the_classic_bugs():
    rng = np.random.default_rng(0)
    numbers = rng.standard_normal((5, 5))
    other = rng.standard_normal((5, 5))
    names, numeric = ["x", "w"], [other, numbers]
    assert "transposed" in diagnose(numbers.T, numbers, "w", names, numeric, batch=4)
    assert "transposed" in diagnose(numbers[:3].T, numbers[:3], "w", names, numeric, batch=4)
    assert "1/4" in diagnose(numbers / 4, numbers, "w", names, numeric, batch=4)
    assert "wrong sign" in diagnose(-numbers, numbers, "w", names, numeric, batch=4)
    assert "all zeros" in diagnose(0 * numbers, numbers, "w", names, numeric, batch=4)
    assert "the one of x" in diagnose(other, numbers, "w", names, numeric, batch=4)
    wrong = numbers.copy()
    wrong[2, 3] += 1.0
    assert "wrong at [2, 3]" in diagnose(wrong, numbers, "w", names, numeric, batch=4)


def test_input_specs():
    assert parse_arg("4,16").shape == (4, 16) and parse_arg("4,16").is_float
    ids = parse_arg("4,3:int10")
    assert ids.shape == (4, 3) and ids.int_high == 10 and not ids.is_float
    variance = parse_arg("6:pos:const")
    assert variance.positive and variance.constant and not variance.differentiable
    draws = variance.draw(np.random.default_rng(0))
    assert np.all(draws >= 0.5) and np.all(draws < 1.5)
    for bad in ("4,x", "4,0", "4:int0", "4:int3:pos", ""):
        with pytest.raises(ConfigError):
            parse_arg(bad)


# ------------------------------------------------------------------ the command
def test_command_exit_codes_and_output(capsys):
    good = f"{EXAMPLES / 'good_dense.py'}:GoodDense"
    assert main([good, "--kwargs", '{"units": 8}', "--only", "forward,gradient"]) == 0
    out = capsys.readouterr().out
    assert "2 gradient vs numbers    PASS" in out and "all checks pass" in out
    bad = f"{EXAMPLES / 'no_bias_grad_dense.py'}:NoBiasGradDense"
    assert main([bad, "--kwargs", '{"units": 8}', "--only", "2", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["checks"][0]["check"] == "gradient" and data["checks"][0]["status"] == "FAIL"
    op = ["tfnets.nn.ops:affine", "--input-shape", "4,6", "--input-shape", "6,3", "--input-shape", "3"]
    assert main([*op, "--only", "gradient,batch"]) == 0
    assert "4 batch consistency      PASS" in capsys.readouterr().out


def test_help_and_bad_usage_import_no_tensorflow():
    code = (
        "import sys\nfrom tfnets.check.__main__ import main\n"
        "for argv in (['--help'], ['x:y', '--only', 'speed']):\n"
        "    try:\n        print('exit', main(argv))\n    except SystemExit as exit:\n        print('exit', exit.code)\n"
        "print('loaded:', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "exit 0" in proc.stdout and "exit 2" in proc.stdout and "loaded: []" in proc.stdout, proc
    assert proc.stderr.strip() == "error: unknown check 'speed'; choose from " + ", ".join(NAMES) + " (or 1-9)"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["no_such_module_here:Thing"], "cannot import module 'no_such_module_here'"),
        (["tfnets.nn.layers:NoSuchLayer"], "has no 'NoSuchLayer'"),
        (["examples/check/missing.py:Thing"], "no such file"),
        (["tfnets.nn.ops:_HALF_DTYPES"], "neither a Keras layer nor an op"),
        (["tfnets.errors:ConfigError"], "not a Keras layer"),
        (["tfnets.nn.layers:ManualDense", "--kwargs", '{"units": 8}', "--input-shape", "4,2,3"], "does not run on"),
        (["tfnets.nn.ops:affine", "--input-shape", "4,6"], "cannot take 1 input(s)"),
        (["tfnets.nn.layers:ManualDense", "--kwargs", "[8]"], "--kwargs is not a JSON object"),
        (["tfnets.nn.layers:ManualDense", "--kwargs", '{"units": 8}', "--only", "speed"], "unknown check 'speed'"),
        (["tfnets.nn.layers:ManualDense", "--input-shape", "4,x"], "is not comma-separated positive sizes"),
        (["tfnets.nn.layers:ManualDense"], "ManualDense.__init__() missing 1 required positional argument"),
        (["ManualDense"], "is not MODULE:NAME"),
    ],
)
def test_bad_usage_is_one_error_line_and_exit_2(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""
