"""Training under `tf.distribute`: 2 logical CPU devices (mirrored) and 2 local worker processes (multi-worker) give
the per-epoch losses of one device to float32 round-off; only the chief writes; bad settings are one line.

Logical devices must be made before TensorFlow starts, so every multi-device run is a fresh child process.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from apps import notmnist_mlp
from tests.conftest import run_script_here
from tfnets.errors import ConfigError
from tfnets.experiment import distribute
from tfnets.experiment.cli import run_main

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5  # relative; float32 round-off of a sum split over two replicas

# The notMNIST MLP (hand-written layers, full batch) and the CS231n FullyConnectedNet (its own train_step), each
# trained through `Run.fit`; prints the per-epoch train and validation losses.
TRAIN_BOTH = textwrap.dedent("""
    import json, sys
    from tfnets.experiment import distribute, determinism
    kind, out = sys.argv[1], sys.argv[2]
    dist = distribute.setup(kind, 2 if kind == "mirrored" else None)
    determinism.configure(0)
    import keras, numpy as np
    from apps import notmnist_mlp
    from tfnets.nn.losses import SoftmaxCrossEntropy
    from tfnets.nn.models import FullyConnectedNet
    from tfnets.nn.optim import Adam
    from tfnets.experiment.runs import Run

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64)
    xc, yc = rng.normal(size=(64, 48)).astype(np.float32), rng.integers(0, 10, 64)
    losses = {}
    with dist.strategy.scope():
        model = notmnist_mlp.build_model(hidden_units=50, seed=0)
        history = Run(f"{out}/mlp", {}).fit(model, (x, y), (x[:32], y[:32]), epochs=3, batch_size=64, verbose=0,
                                            tensorboard=False)
        losses["mlp"] = [[row["loss"], row["val_loss"]] for row in history]
        keras.utils.set_random_seed(0)
        model = FullyConnectedNet([40, 30], input_dim=48, reg=1e-3, weight_scale=0.1).as_keras_model()
        model.compile(optimizer=Adam(learning_rate=1e-2), loss=SoftmaxCrossEntropy(), metrics=["accuracy"])
        history = Run(f"{out}/fc", {}).fit(model, (xc, yc), (xc[:32], yc[:32]), epochs=3, batch_size=16,
                                           verbose=0, tensorboard=False)
        losses["fc"] = [[row["loss"], row["val_loss"]] for row in history]
    print(json.dumps({"replicas": dist.replicas, "losses": losses}))
""")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster_env(index, ports, tmpdir):
    """Worker `index`'s environment; its temporary files go to `tmpdir` (a test's own folder, checked afterwards)."""
    config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    return {**os.environ, "TF_CONFIG": json.dumps(config), "TMPDIR": str(tmpdir)}


def _tfnets_litter(tmpdir):
    """What of tfnets is left in a temporary directory."""
    return sorted(name for name in os.listdir(tmpdir) if "tfnets" in name)


def _run_group(commands_and_envs, timeout=300):
    """Start the processes together (a cluster waits for all its workers); returns their CompletedProcess-likes."""
    children = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd, env in commands_and_envs
    ]
    results = []
    for child in children:
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in children:
                other.kill()
            raise
        results.append((child.returncode, out, err))
    return results


def _last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def _max_relative_difference(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.abs(b)))


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    # One device needs no logical devices made before TensorFlow starts: trained in this process.
    return _last_json(run_script_here(TRAIN_BOTH, "none", tmp_path_factory.mktemp("none")))


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory, data_dir):
    """TRAIN_BOTH, BATCH_NORM, then APP_UNDER_MIRRORED, in one child process with 2 logical CPU devices (one
    TensorFlow start-up): their three JSON lines, and the folder the app wrote to."""
    out = tmp_path_factory.mktemp("mirrored")
    app_argv = [*_app_argv(out / "app", data_dir), "--distribute", "mirrored", "--devices", "2"]
    script = TRAIN_BOTH + BATCH_NORM + APP_UNDER_MIRRORED
    command = [sys.executable, "-c", script, "mirrored", str(out), json.dumps(app_argv)]
    [(code, stdout, stderr)] = _run_group([(command, os.environ)])
    assert code == 0, stderr
    *_, both, batch_norm, app = stdout.strip().splitlines()
    return json.loads(both), json.loads(batch_norm), json.loads(app), out / "app"


def test_mirrored_over_two_logical_devices_matches_one_device(one_device, mirrored):
    got = mirrored[0]
    assert got["replicas"] == 2 and one_device["replicas"] == 1
    for net in ("mlp", "fc"):
        assert _max_relative_difference(got["losses"][net], one_device["losses"][net]) < TOLERANCE, net


@pytest.mark.slow
def test_two_worker_processes_match_one_device(one_device, tmp_path):
    ports, tmpdir = _free_ports(2), tmp_path / "tmpdir"
    tmpdir.mkdir()
    results = _run_group(
        [
            (
                [sys.executable, "-c", TRAIN_BOTH, "multi-worker", str(tmp_path / f"w{i}")],
                _cluster_env(i, ports, tmpdir),
            )
            for i in range(2)
        ]
    )
    for code, _, stderr in results:
        assert code == 0, stderr
    assert _tfnets_litter(tmpdir) == []
    chief, worker = (_last_json(out) for _, out, _ in results)
    assert chief == worker  # both workers computed the same numbers
    assert chief["replicas"] == 2
    for net in ("mlp", "fc"):
        assert _max_relative_difference(chief["losses"][net], one_device["losses"][net]) < TOLERANCE, net


def _app_argv(out, data_dir):
    return [
        "--quick",
        "--epochs",
        "2",
        "--data-dir",
        str(data_dir),
        "--out",
        str(out / "runs"),
        "--export-dir",
        str(out / "export"),
        "--run-id",
        "r",
    ]


def _metrics(out):
    return json.loads((out / "runs" / "notmnist_mlp" / "r" / "metrics.json").read_text())


@pytest.fixture(scope="module")
def app_one_device(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("app_none")
    assert run_main(notmnist_mlp.main, _app_argv(out, data_dir)) == 0
    return _metrics(out)


def test_an_app_under_mirrored_records_its_devices_and_matches(app_one_device, mirrored):
    app, out = mirrored[2], mirrored[3]
    assert app["code"] == 0, app["stderr"]
    assert "training on 2 replica(s): /cpu:0, /cpu:1 (mirrored, float32)" in app["stdout"]
    config = json.loads((out / "runs" / "notmnist_mlp" / "r" / "config.json").read_text())
    assert config["distribution"] == {
        "distribute": "mirrored",
        "replicas": 2,
        "devices": ["/cpu:0", "/cpu:1"],
        "workers": 1,
    }
    final = _metrics(out)["final"]
    for key, value in app_one_device["final"].items():
        assert final[key] == pytest.approx(value, rel=TOLERANCE), key


# ---------------------------------------------------------------- one-line errors


@pytest.mark.parametrize(
    "value, message",
    [
        ("{not json", "TF_CONFIG is not a valid cluster description"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "does not name one of the 1"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "TF_CONFIG is not a valid cluster"),
    ],
)
def test_a_malformed_tf_config_is_one_line(value, message, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TF_CONFIG", value)
    assert run_main(notmnist_mlp.main, ["--distribute", "multi-worker", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--distribute", "multi-worker"],
            "needs TF_CONFIG (one process per worker); start a cluster on this machine "
            "with: python -m tfnets.experiment.launch --multi-worker 2",
        ),
        (["--devices", "2"], "--devices needs --distribute mirrored"),
        (["--distribute", "mirrored", "--devices", "0"], "expected a positive integer, got 0"),
        (["--distribute", "everywhere"], "invalid choice: 'everywhere'"),
    ],
)
def test_bad_distribution_flags_are_one_line(argv, message, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = run_main(notmnist_mlp.main, [*argv, "--out", str(tmp_path)])  # argparse's own errors included (exit 2)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "notmnist_mlp").exists()


def test_the_global_batch_must_split_evenly_over_the_replicas():
    class TwoReplicas:
        num_replicas_in_sync = 2

    two = distribute.Distribution("mirrored", TwoReplicas(), ["/cpu:0", "/cpu:1"])
    two.check_batch_size(64)
    with pytest.raises(ConfigError, match="--batch-size 33 does not split evenly over 2 replicas"):
        two.check_batch_size(33)


@pytest.mark.bf16
def test_precision_is_the_models_compute_dtype_and_is_put_back(tmp_path, data_dir):
    import keras

    seen = []
    original = notmnist_mlp.build_model

    def recording(*args, **kwargs):
        model = original(*args, **kwargs)
        seen.append((model.layers[0].compute_dtype, model.layers[0].variable_dtype))
        return model

    argv = [*_app_argv(tmp_path, data_dir), "--epochs", "1", "--precision", "mixed_bfloat16"]
    notmnist_mlp.build_model = recording
    try:
        assert run_main(notmnist_mlp.main, argv) == 0
    finally:
        notmnist_mlp.build_model = original
    assert seen == [("bfloat16", "float32")]
    config = json.loads((tmp_path / "runs" / "notmnist_mlp" / "r" / "config.json").read_text())
    assert config["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # the command put it back


# Batch normalisation under a strategy: each replica's statistics come from its half of the batch unless the layer
# is synchronized. The CNN apps build synchronized layers whenever there are several replicas.
# Run after TRAIN_BOTH in the same process (its `dist` is the mirrored strategy over 2 logical devices).
BATCH_NORM = textwrap.dedent("""
    determinism.configure(0)
    import keras, numpy as np
    from apps import mnist_cnn
    from tfnets.experiment.runs import Run

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, 64)

    def train(name, strategy, build):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = build()
            # Small plain steps, one epoch (two updates): the two summation orders must stay within float32
            # round-off on every CPU. Adam turns the near-zero gradients of a batch norm's beta (it follows the
            # batch mean) into full-size steps, and larger or more steps flip ReLUs near 0 by round-off that
            # depends on the instruction set (seen: SGD(0.05) over 2 epochs differs by 7e-4 with AVX2 kernels).
            model.compile(keras.optimizers.SGD(0.001),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            history = Run(f"{out}/{name}", {}).fit(model, (x, y), (x[:32], y[:32]), epochs=1, batch_size=32,
                                                verbose=0, tensorboard=False)
        synchronized = [layer.synchronized for layer in model.layers
                        if isinstance(layer, keras.layers.BatchNormalization)]
        return {"losses": [[row["loss"], row["val_loss"]] for row in history], "synchronized": synchronized}

    def per_replica():  # the app's network with plain (per-replica) batch norm layers
        model = mnist_cnn.build_classifier(0.0)
        config = model.get_config()
        for layer in config["layers"]:
            if layer["class_name"] == "BatchNormalization":
                layer["config"]["synchronized"] = False
        return keras.Model.from_config(config)

    one = __import__("tensorflow").distribute.get_strategy()
    print(json.dumps({"one": train("one", one, lambda: mnist_cnn.build_classifier(0.0)),
                      "app": train("app", dist.strategy, lambda: mnist_cnn.build_classifier(0.0)),
                      "plain": train("plain", dist.strategy, per_replica)}))
""")


# The notMNIST MLP app, a second command in the same process: its own `distribute.setup` finds the 2 logical
# devices made above. Prints its exit code and what it printed.
APP_UNDER_MIRRORED = textwrap.dedent("""
    import contextlib, io
    from tfnets.experiment.cli import run_main
    printed, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        code = run_main(notmnist_mlp.main, json.loads(sys.argv[3]))
    print(json.dumps({"code": code, "stdout": printed.getvalue(), "stderr": errors.getvalue()}))
""")


def test_batch_norm_under_mirrored_uses_global_batch_statistics(mirrored):
    runs = mirrored[1]
    assert runs["one"]["synchronized"] == [False] * 4  # one device: the layers are left as they were
    assert runs["app"]["synchronized"] == [True] * 4
    assert runs["plain"]["synchronized"] == [False] * 4
    # Synchronized statistics give the one-device losses; per-replica statistics visibly do not.
    assert _max_relative_difference(runs["app"]["losses"], runs["one"]["losses"]) < TOLERANCE
    assert _max_relative_difference(runs["plain"]["losses"], runs["one"]["losses"]) > 1e-3  # 5e-2 seen


# A worker process that SIGKILLs itself right after its checkpoint of epoch `kill_after` (worker 1 only).
KILLED_WORKER = textwrap.dedent("""
    import json, os, runpy, signal, sys
    kill_after = int(sys.argv.pop(1))
    from tfnets.experiment.runs import Run
    save = Run.save_checkpoint
    def save_then_die(self, model, epochs_done, *args, **kwargs):
        save(self, model, epochs_done, *args, **kwargs)
        if epochs_done == kill_after and json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    Run.save_checkpoint = save_then_die
    sys.argv[0] = "apps.notmnist_mlp"
    runpy.run_module("apps.notmnist_mlp", run_name="__main__", alter_sys=True)
""")


@pytest.mark.slow
def test_a_killed_worker_then_the_group_again_resumes_from_the_chiefs_checkpoint_and_only_the_chief_writes(
    app_one_device, tmp_path, data_dir
):
    ports, tmpdir = _free_ports(2), tmp_path / "tmpdir"
    tmpdir.mkdir()
    argv = [*_app_argv(tmp_path, data_dir), "--distribute", "multi-worker"]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", KILLED_WORKER, "1", *argv],
            cwd=ROOT,
            env=_cluster_env(i, ports, tmpdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    chief, worker = children
    try:
        worker.wait(timeout=300)
        assert worker.returncode == -signal.SIGKILL
        # The chief now waits for its lost peer in the next all-reduce, after its own epoch-1 checkpoint: stop it.
        checkpoint = tmp_path / "runs" / "notmnist_mlp" / "r" / "checkpoint.npz"
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and time.monotonic() < deadline and chief.poll() is None:
            time.sleep(0.2)
        assert checkpoint.exists()
    finally:
        for child in children:
            child.kill()
            child.communicate()
    [stale] = _tfnets_litter(tmpdir)  # the SIGKILLed worker could not clean up...
    assert stale.startswith("tfnets-worker1-")

    command = [sys.executable, "-m", "apps.notmnist_mlp", *argv]
    ports = _free_ports(2)
    resumed = _run_group([(command, _cluster_env(i, ports, tmpdir)) for i in range(2)])
    for code, out, stderr in resumed:
        assert code == 0, stderr
        assert "resuming after epoch 1 of 2" in out
    assert _tfnets_litter(tmpdir) == []  # ...the same worker of the same run cleared and reused its folder
    final = _metrics(tmp_path)["final"]
    for key, value in app_one_device["final"].items():
        assert final[key] == pytest.approx(value, rel=TOLERANCE), key
    # The chief wrote the run folder and the export; the other worker wrote only its own scratch folder.
    assert (tmp_path / "export" / "metadata.json").exists()
    worker_out = resumed[1][1]
    assert f"run folder: {tmp_path}" not in worker_out and "tfnets-worker1-" in worker_out
    assert f"exported model: {tmp_path / 'export'}" in resumed[0][1] and "exported model:" not in worker_out

    # The whole group run again: every worker restores the chief's final checkpoint, nothing is retrained.
    ports = _free_ports(2)
    again = _run_group([(command, _cluster_env(i, ports, tmpdir)) for i in range(2)])
    for code, out, stderr in again:
        assert code == 0, stderr
        assert "all 2 epochs already trained" in out
    assert _tfnets_litter(tmpdir) == []
    assert _metrics(tmp_path)["final"] == final
