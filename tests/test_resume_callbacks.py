"""A resumed run equals an uninterrupted one, also with stateful callbacks; one writer per run folder.

The SIGKILL test trains a small network with ReduceLROnPlateau and EarlyStopping in a child process, kills that
process (SIGKILL) right after an epoch's checkpoint, re-runs it, and compares history and weights with a run that was
never interrupted (trained in the test's own process).
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.conftest import run_script_here
from tfnets.errors import ConfigError
from tfnets.experiment.callbacks import KeepBest
from tfnets.experiment.cli import run_main
from tfnets.experiment.runs import Run

ROOT = Path(__file__).resolve().parents[1]

# The validation loss falls for a few epochs, then rises: the plateau callback halves the learning rate, and early
# stopping ends training well before the last epoch.
TRAIN_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import keras, numpy as np
    from tfnets.experiment import determinism
    from tfnets.experiment.runs import Run

    folder, kill_after = sys.argv[1], int(sys.argv[2])
    if kill_after:
        save = Run.save_checkpoint
        def save_then_die(self, model, epochs_done, *args, **kwargs):
            save(self, model, epochs_done, *args, **kwargs)
            if epochs_done == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        Run.save_checkpoint = save_then_die

    determinism.configure(0)
    rng = np.random.default_rng(0)
    def noisy(n):  # a learnable rule with 40 % of the labels random: it improves, then overfits
        x = rng.normal(size=(n, 12)).astype("float32")
        return x, np.where(rng.random(n) < 0.4, rng.integers(0, 3, n), x[:, :3].argmax(1))
    (x, y), (xv, yv) = noisy(96), noisy(48)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  run_eagerly=True)  # tiny batches: tracing would cost more than it saves
    callbacks = [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True)]
    history = Run(folder, {"seed": 0}).fit(model, (x, y), (xv, yv), epochs=30, batch_size=32, verbose=0,
                                           callbacks=callbacks, tensorboard=False)
    print(json.dumps({"history": [{k: v for k, v in row.items() if k != "time_s"} for row in history],
                      "weights": [w.tolist() for w in model.get_weights()],
                      "lr": float(model.optimizer.learning_rate.numpy())}))
""")


def _train(folder, kill_after=0):
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, str(folder), str(kill_after)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return done


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_rerun_equals_an_uninterrupted_run(tmp_path):
    # The uninterrupted run and the final one train in this process (run_script_here): a TF start-up less each.
    expected = json.loads(run_script_here(TRAIN_SCRIPT, tmp_path / "whole", 0).splitlines()[-1])
    epochs = len(expected["history"])
    assert 6 < epochs < 30  # early stopping ended it, after the kill below
    assert expected["lr"] < 0.02 / 2  # and the learning rate was halved more than once

    # Killed after epoch 5: the learning rate was halved once, plateau and early-stopping counters are running.
    killed = _train(tmp_path / "resumed", kill_after=5)
    assert killed.returncode == -signal.SIGKILL
    resumed = _train(tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 5" in resumed.stdout
    got = json.loads(resumed.stdout.splitlines()[-1])
    assert got["history"] == expected["history"]
    assert got["lr"] == expected["lr"]
    for a, b in zip(got["weights"], expected["weights"]):
        np.testing.assert_array_equal(np.array(a), np.array(b))

    again = run_script_here(TRAIN_SCRIPT, tmp_path / "resumed", 0)  # a run that stopped early stays stopped
    assert f"stopped early already trained (checkpoint, {epochs} epochs)" in again
    assert json.loads(again.splitlines()[-1]) == expected


def _tiny_model(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=True
    )
    return model


def _data(seed=0, n=40):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


def test_keep_best_keeps_the_best_epoch_and_survives_a_resume(tmp_path, monkeypatch):
    train, valid = _data(0), _data(1)

    def fit(folder, epochs, stop_after=None):
        model, keeper = _tiny_model(0), KeepBest(patience=3)
        if stop_after:  # a crash right after the checkpoint of epoch `stop_after`
            save = Run.save_checkpoint

            def save_then_stop(self, model, epochs_done, *args, **kwargs):
                save(self, model, epochs_done, *args, **kwargs)
                if epochs_done == stop_after:
                    raise KeyboardInterrupt

            monkeypatch.setattr(Run, "save_checkpoint", save_then_stop)
        try:
            history = Run(folder, {"seed": 0}).fit(
                model, train, valid, epochs=epochs, batch_size=8, verbose=0, callbacks=[keeper], tensorboard=False
            )
        finally:
            monkeypatch.undo()
        return model, keeper, history

    model, keeper, history = fit(tmp_path / "whole", 25)
    losses = [row["val_loss"] for row in history]
    assert keeper.best_epoch == 1 + int(np.argmin(losses)) and keeper.best == min(losses)
    assert len(history) == keeper.best_epoch + 3 < 25  # stopped after 3 epochs without improvement
    last = model.get_weights()
    assert keeper.restore_best(model) == keeper.best_epoch
    assert any((a != b).any() for a, b in zip(model.get_weights(), last))

    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "resumed", 25, stop_after=keeper.best_epoch + 1)
    model2, keeper2, history2 = fit(tmp_path / "resumed", 25)
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in history2] == [
        {k: v for k, v in r.items() if k != "time_s"} for r in history
    ]
    assert (keeper2.best, keeper2.best_epoch, keeper2.wait) == (keeper.best, keeper.best_epoch, keeper.wait)
    keeper2.restore_best(model2)
    keeper.restore_best(model)
    for a, b in zip(model2.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_an_older_checkpoint_format_starts_afresh(tmp_path, capsys):
    train = _data()
    run = Run(tmp_path / "run", {"seed": 0})
    run.fit(_tiny_model(0), train, epochs=1, batch_size=8, verbose=0, tensorboard=False)
    with np.load(run.checkpoint_path) as saved:
        arrays = dict(saved)
    state = json.loads(bytes(arrays["state"]).decode())
    del state["format"]
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    np.savez(run.checkpoint_path, **arrays)
    assert run.restore(_tiny_model(0)) == (0, [])
    assert "written by an older tfnets" in capsys.readouterr().out


# ---------------------------------------------------------------- one writer per folder

HOLD_SCRIPT = textwrap.dedent("""
    import sys, time
    from tfnets.experiment import locks
    locks.acquire(sys.argv[1], "folder x is in use by", "wait")
    print("locked", flush=True)
    time.sleep(60)
""")


@contextlib.contextmanager
def held_by_another_process(lock_file):
    """A child process holding the lock at `lock_file` until the block ends (then it is SIGKILLed)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(lock_file)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        yield child
    finally:
        child.kill()
        child.wait()


def test_a_run_folder_in_use_is_one_line_and_the_lock_dies_with_its_process(tmp_path):
    folder = tmp_path / "run"
    with held_by_another_process(folder / ".lock") as child:
        with pytest.raises(
            ConfigError,
            match=rf"run folder .* is in use by process {child.pid}; wait for it or "
            r"pass --run-id",
        ):
            Run(folder, {"seed": 0})
        assert not (folder / "config.json").exists()  # nothing written
        child.kill()  # SIGKILL: no clean-up ran, yet the kernel dropped the lock
        child.wait()
        Run(folder, {"seed": 0})
    assert (folder / "config.json").exists()


def test_an_app_started_twice_gets_one_line(tmp_path, capsys):
    from apps import dl_principles

    argv = ["--out", str(tmp_path / "runs"), "--run-id", "same", "--quick", "--part", "A"]
    folder = tmp_path / "runs" / "dl_principles" / "same"
    with held_by_another_process(folder / ".lock") as child:  # what the first command holds while it trains
        assert run_main(dl_principles.main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: run folder {folder} is in use by process {child.pid}; wait for it or pass --run-id"]
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]


def test_an_export_folder_being_written_is_one_line(tmp_path):
    from tfnets.experiment.export import export_model

    model = _tiny_model(0)
    export_dir = tmp_path / "saved" / "tiny"
    export_model(model, export_dir, class_names="abc", input_shape=[4])
    before = (export_dir / "metadata.json").stat().st_mtime_ns
    with held_by_another_process(export_dir.parent / ".tiny.lock") as child:
        with pytest.raises(
            ConfigError,
            match=rf"export folder {export_dir} is being written by process "
            rf"{child.pid}; wait for it or pass --export-dir",
        ):
            export_model(model, export_dir, class_names="abc", input_shape=[4])
    assert (export_dir / "metadata.json").stat().st_mtime_ns == before  # untouched
    export_model(model, export_dir, class_names="abc", input_shape=[4])  # free again


def test_sigterm_prints_the_interrupt_line(tmp_path):
    script = textwrap.dedent("""
        import os, signal, time
        from tfnets.experiment.cli import exit_with
        def main(argv):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
        exit_with(main)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 143
    assert done.stderr.strip().splitlines() == [
        "interrupted: completed epochs are checkpointed; re-run the same command to resume"
    ]
