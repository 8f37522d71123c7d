"""Quiet, fast command lines: `--help` loads no TensorFlow, a default run shows no TF log lines (`--debug` does),
and `tfnets.load_model` reloads models of our layers in a fresh process."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfnets.experiment.quiet import is_hidden

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted(p.stem for p in (ROOT / "apps").glob("*.py") if not p.stem.startswith("_"))  # apps and tools, no helpers
HEAVY = ("tensorflow", "keras", "keras_tuner", "matplotlib")
TF_LOG_LINE = re.compile(r"^[IWE]\d{4} |absl::InitializeLog|NodeDef|cuInit", re.MULTILINE)


def _python(code, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, **kwargs
    )


def _env(**changes):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env.update(changes)
    return env


@pytest.mark.parametrize("module", [f"apps.{app}" for app in APPS] + ["benchmarks"])
def test_help_and_bad_arguments_import_no_tensorflow(module):
    code = f"""
import runpy, sys
for argv in (["--help"], ["--no-such-flag"]):
    sys.argv = ["{module}", *argv]
    try:
        runpy.run_module("{module}", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        print("exit", exit.code)
print("loaded:", sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    proc = _python(code, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("exit 0") == 1 and "exit 2" in proc.stdout, proc.stdout  # help, then the bad flag
    assert "loaded: []" in proc.stdout, proc.stdout
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr  # one line, no trace


def test_is_hidden_follows_the_log_level():
    info = "I0000 00:00:17.1 8895 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
    error = "E0000 00:00:17.2 8895 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
    notice = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    ours = "error: the training set is empty\n"
    assert [is_hidden(line, 3) for line in (info, error, notice, ours)] == [True, True, True, False]
    assert [is_hidden(line, 2) for line in (info, error, notice, ours)] == [True, False, True, False]
    assert not any(is_hidden(line, 0) for line in (info, error, notice, ours))


def _quick_run(data_dir, tmp_path, *flags):
    argv = [
        "-m",
        "apps.notmnist_cnn",
        "--quick",
        "--epochs",
        "1",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path / "runs"),
        "--export-dir",
        str(tmp_path / "export"),
        *flags,
    ]
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_default_run_shows_no_tensorflow_log_lines_and_debug_shows_them(data_dir, tmp_path):
    quiet = _quick_run(data_dir, tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "test accuracy" in quiet.stdout
    assert not TF_LOG_LINE.search(quiet.stderr), quiet.stderr
    # --debug hides nothing: TensorFlow's own lines come through (any app; part D of dl_principles trains nothing).
    loud = subprocess.run(
        [sys.executable, "-m", "apps.dl_principles", "--part", "D", "--quick", "--debug", "--out", str(tmp_path / "d")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert loud.returncode == 0, loud.stderr
    assert TF_LOG_LINE.search(loud.stderr), loud.stderr


def test_user_log_level_is_kept():
    code = "import os; from tfnets.experiment.quiet import quiet_tensorflow; quiet_tensorflow(); print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    assert _python(code, env=_env(TF_CPP_MIN_LOG_LEVEL="1")).stdout.strip() == "1"
    assert _python(code, env=_env()).stdout.strip() == "3"


def test_load_model_reloads_our_layers_in_a_fresh_process(tmp_path):
    import keras

    from tfnets.nn.layers import ManualDense, MeanProbabilityLogits, SumOverWords
    from tfnets.nn.losses import SoftmaxCrossEntropy
    from tfnets.nn.optim import SGDMomentum

    keras.utils.set_random_seed(0)
    words = keras.Input((3, 4))
    merged = SumOverWords()(words)
    nets = [ManualDense(5, name=f"net{k}")(merged) for k in range(2)]
    model = keras.Model(words, MeanProbabilityLogits()(nets))
    model.compile(optimizer=SGDMomentum(learning_rate=0.1, momentum=0.9), loss=SoftmaxCrossEntropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(6, 3, 4)).astype(np.float32)
    model.fit(x, np.arange(6) % 5, epochs=1, verbose=0)
    (tmp_path / "export").mkdir()
    model.save(tmp_path / "export" / "model.keras")
    np.save(tmp_path / "x.npy", x)
    expected = model.predict(x, verbose=0)

    code = f"""
import sys
import numpy as np
import tfnets
assert "tensorflow" not in sys.modules, "import tfnets must stay light"
folder = tfnets.load_model({str(tmp_path / "export")!r})
uncompiled = tfnets.load_model({str(tmp_path / "export" / "model.keras")!r}, compile=False)
print(type(folder.optimizer).__name__, type(folder.loss).__name__, getattr(uncompiled, "optimizer", None))
np.save({str(tmp_path / "out.npy")!r}, uncompiled.predict(np.load({str(tmp_path / "x.npy")!r}), verbose=0))
"""
    proc = _python(code, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["SGDMomentum", "SoftmaxCrossEntropy", "None"]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-6, atol=1e-6)
