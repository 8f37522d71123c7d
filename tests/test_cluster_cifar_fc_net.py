"""apps.cifar_fc_net over a cluster (`tfnets-launch --workers 2`) computes what one plain process computes.

Every part runs, small: the Solver parts' loops of solvers, the "best" part's two-trial sweep (one trial for each
worker) and then its final training, which needs the sweep's choice. Each command runs once (module-scoped fixtures).
"""

import json
import re

import pytest

from tests import cluster_helpers as cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

APP = "cifar_fc_net"
# --quick with a small "best" net and two one-epoch sweep trials.
FLAGS = ["--quick", "--hidden", "64-32", "--batch-size", "50", "--max-trials", "2"]


@pytest.fixture(scope="module")
def plain(data_dir, tmp_path_factory):
    return cluster.ran("plain", APP, FLAGS, data_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def launched(data_dir, tmp_path_factory):
    return cluster.ran("launched", APP, FLAGS, data_dir, tmp_path_factory)


def recorded(out):
    """results.json (every part's numbers, the Solver parts' among them) without its times."""

    def untimed(value):
        if isinstance(value, dict):
            return {k: untimed(v) for k, v in value.items() if "time" not in k}
        if isinstance(value, list):
            return [untimed(v) for v in value]
        return value

    return untimed(json.loads((cluster.run_folder(out, APP) / "results.json").read_text()))


def test_both_commands_succeed(plain, launched):
    for _, done in (plain, launched):
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_cluster_computes_what_one_process_computes(plain, launched):
    assert cluster.outcome(launched[0], APP) == cluster.outcome(plain[0], APP)
    assert recorded(launched[0]) == recorded(plain[0])


def test_both_workers_train_and_the_final_run_trains_nothing(launched):
    out, done = launched
    trained = cluster.trained_by(done.stdout)
    assert set(trained) >= {"tuner0", "tuner1"}, trained
    assert cluster.trained_epochs(done.stdout).get("final", 0) == 0
    # The Solver prints no epochs; the final run only resumes every solver, each already at its last epoch.
    resumed = re.findall(r"^\[final\] .*: resuming after epoch (\d+) of (\d+)$", done.stdout, flags=re.M)
    solvers = list((cluster.run_folder(out, APP) / "solver").glob("*.npz"))
    assert len(resumed) == len(solvers) > 0 and all(epoch == total for epoch, total in resumed), resumed
