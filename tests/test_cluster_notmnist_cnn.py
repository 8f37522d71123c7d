"""The notMNIST CNN's studies over a cluster: `tfnets-launch --workers 2 -- python -m apps.notmnist_cnn --study ...`
trains the baseline, every study value and the improved row on whichever worker asks, and ends with the tables
and exports of one plain process; a worker killed mid-plan and the launch repeated repeats no finished training."""

import json
import os

import pytest

from tests import cluster_helpers as cluster

APP = "notmnist_cnn"
FLAGS = ["--quick", "--epochs", "3"]


def _plain(data_dir, out, flags):
    done = cluster.run(cluster.app_command(APP, flags, out), data_dir)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return cluster.outcome(out, APP)


def _launched_cleanly(data_dir, tmp_path, flags):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir(parents=True)
    done = cluster.run(cluster.launch_command(APP, flags, tmp_path), data_dir, tmpdir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert set(cluster.trained_by(done.stdout)) == {"tuner0", "tuner1"}  # both workers trained
    assert cluster.trained_epochs(done.stdout).get("final", 0) == 0  # the final plain run only wrote the results
    assert [name for name in os.listdir(tmpdir) if "tfnets" in name] == []
    return done


@pytest.mark.cluster
@pytest.mark.slow
def test_a_study_and_its_baseline_train_side_by_side_and_give_the_plain_tables(data_dir, tmp_path):
    flags = [*FLAGS, "--study", "l2"]
    expected = _plain(data_dir, tmp_path / "plain", flags)
    done = _launched_cleanly(data_dir, tmp_path / "cluster", flags)
    trained = sorted(name for names in cluster.trained_by(done.stdout).values() for name in names)
    assert trained == ["baseline", "l2=0.01", "l2=0.1", "l2=0.5"]
    assert cluster.outcome(tmp_path / "cluster", APP) == expected
    assert "l2_results.csv" in expected


@pytest.fixture(scope="module")
def plain_all(data_dir, tmp_path_factory):
    return _plain(data_dir, tmp_path_factory.mktemp("plain"), [*FLAGS, "--study", "all"])


@pytest.mark.cluster
@pytest.mark.slow
def test_study_all_gives_the_plain_tables_and_exports(plain_all, data_dir, tmp_path):
    flags = [*FLAGS, "--study", "all"]
    done = _launched_cleanly(data_dir, tmp_path, flags)
    trained = sorted(name for names in cluster.trained_by(done.stdout).values() for name in names)
    assert trained == sorted(
        ["baseline", "improved", "l2=0.01", "l2=0.1", "l2=0.5", "keep_prob=0.9", "keep_prob=0.75", "keep_prob=0.5"]
    )
    assert cluster.outcome(tmp_path, APP) == plain_all
    exports = sorted(path.name for path in (tmp_path / "export").iterdir() if path.is_dir())
    assert exports == [APP, f"{APP}_dropout", f"{APP}_improved", f"{APP}_l2"]


@pytest.mark.cluster
@pytest.mark.slow
def test_a_worker_killed_mid_plan_then_the_launch_repeated_repeats_no_finished_training(plain_all, data_dir, tmp_path):
    flags = [*FLAGS, "--study", "all"]
    _, _, _, returncode = cluster.kill_a_worker_mid_training(
        cluster.launch_command(APP, flags, tmp_path),
        data_dir,
        r"^\[chief\] (chief: training \S+ finished|Trial \d+ Complete)",
        r"^\[(tuner\d)\] Epoch 2/3",
    )
    assert returncode != 0

    run_dir = cluster.run_folder(tmp_path, APP)
    done_before = {
        path.parent
        for path in run_dir.rglob("metrics.json")
        if json.loads(path.read_text()).get("status", "completed") == "completed"
    }
    assert done_before
    again = cluster.run(cluster.launch_command(APP, flags, tmp_path), data_dir)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "resuming after epoch" in again.stdout  # the killed worker's training went on from its checkpoint
    retrained = {name for names in cluster.trained_by(again.stdout).values() for name in names}
    for folder in done_before:  # no finished training was handed out again
        assert folder.name not in retrained and (folder != run_dir or "baseline" not in retrained), folder
    assert cluster.trained_epochs(again.stdout).get("final", 0) == 0
    assert cluster.outcome(tmp_path, APP) == plain_all
