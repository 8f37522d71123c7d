"""The apps from Python: `run(config=None, **overrides)` gives what the command line gives, one app after another in
one process, and leaves the process as it found it; a run's config.json replays the same run."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from apps import notmnist_cnn, notmnist_mlp
from tfnets.errors import ConfigError
from tfnets.experiment import determinism, locks

ROOT = Path(__file__).resolve().parents[1]


def _command_final(app, argv, tmp_path):
    """The final metrics of `python -m apps.<app> ARGV` run in its own process."""
    out = tmp_path / "cli" / app
    done = subprocess.run(
        [sys.executable, "-m", f"apps.{app}", *argv, "--out", str(out), "--export-dir", str(out / "export")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (metrics,) = out.glob(f"{app}/*/metrics.json")
    return json.loads(metrics.read_text())["final"]


@pytest.mark.slow
def test_apps_run_one_after_another_in_one_process_as_their_commands_do(data_dir, tmp_path):
    calls = [
        (notmnist_cnn, {"quick": True, "epochs": 1}, ["--quick", "--epochs", "1"]),
        (notmnist_mlp, {"quick": True, "epochs": 2}, ["--quick", "--epochs", "2"]),
        (notmnist_cnn, {"quick": True, "epochs": 1, "l2": 0.1}, ["--quick", "--epochs", "1", "--l2", "0.1"]),
    ]
    policy, deterministic = keras.mixed_precision.global_policy().name, determinism.op_determinism_enabled()
    for module, overrides, argv in calls:
        app = module.Config.APP
        out = tmp_path / "api" / f"{app}-{len(overrides)}"
        result = module.run(data_dir=str(data_dir), out=str(out), export_dir=str(out / "export"), **overrides)
        assert result.run_path.parent == out / app and result.model is not None
        assert result.export_path == out / "export" and (result.export_path / "metadata.json").exists()
        assert result.history and result.history[-1]["epoch"] == overrides["epochs"]
        assert result.final == _command_final(
            app, [*argv, "--data-dir", str(data_dir)], tmp_path / app / str(len(argv))
        )
        # What the Experiment changed is back: no lock held, the policy and op determinism as before.
        assert locks.held() == frozenset()
        assert keras.mixed_precision.global_policy().name == policy
        assert determinism.op_determinism_enabled() == deterministic


def test_a_mixed_precision_run_puts_the_global_policy_back_even_when_it_fails(data_dir, tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")  # the caller's own choice, not the default
    try:
        with pytest.raises(ConfigError, match="larger than the training set"):
            # Fails inside the experiment, after the policy was set: the policy must still be put back.
            notmnist_cnn.run(
                quick=True,
                epochs=1,
                batch_size=5000,
                precision="mixed_bfloat16",
                data_dir=str(data_dir),
                out=str(tmp_path),
            )
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert locks.held() == frozenset()


def test_a_bad_keyword_or_value_is_a_one_line_exception_never_an_exit():
    with pytest.raises(ConfigError, match="unknown setting"):
        notmnist_cnn.run(wings=2)
    with pytest.raises(ConfigError, match="--keep-prob must be in"):
        notmnist_cnn.run(keep_prob=2.0)


def test_a_run_folders_config_replays_the_same_run_which_only_evaluates(data_dir, tmp_path, capsys):
    first = notmnist_cnn.run(
        quick=True, epochs=1, data_dir=str(data_dir), out=str(tmp_path), export_dir=str(tmp_path / "export")
    )
    capsys.readouterr()
    again = notmnist_cnn.main(["--config", str(first.run_path / "config.json")])
    assert again.run_path == first.run_path and again.final == first.final
    assert "already trained" in capsys.readouterr().out
