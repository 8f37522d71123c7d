"""apps.mnist_depth_width over a cluster (`tfnets-launch --workers 2`) computes what one plain process computes.

Two budgets, each a search of its own over two depths (one-epoch trials), shared by both workers; the final plain
run only restores each budget's best trial to export it. Each command runs once (module-scoped fixtures).
"""

import pytest

from tests import cluster_helpers

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

APP = "mnist_depth_width"
BUDGETS = (20, 40)
FLAGS = ["--quick", "--epochs", "1", "--budgets", ",".join(map(str, BUDGETS)), "--max-depth", "2"]


@pytest.fixture(scope="module")
def plain(data_dir, tmp_path_factory):
    return cluster_helpers.ran("plain", APP, FLAGS, data_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def launched(data_dir, tmp_path_factory):
    return cluster_helpers.ran("launched", APP, FLAGS, data_dir, tmp_path_factory)


def test_both_commands_succeed(plain, launched):
    for _, done in (plain, launched):
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_cluster_computes_what_one_process_computes(plain, launched):
    assert cluster_helpers.outcome(launched[0], APP) == cluster_helpers.outcome(plain[0], APP)
    for budget in BUDGETS:
        assert (launched[0] / "export" / APP / f"budget_{budget}" / "model.keras").exists()


def test_both_workers_train_and_the_final_run_trains_nothing(launched):
    output = launched[1].stdout
    trained = cluster_helpers.trained_by(output)
    assert set(trained) >= {"tuner0", "tuner1"}, trained
    assert len(sum(trained.values(), [])) == 2 * len(BUDGETS)  # every depth of every budget, once
    assert cluster_helpers.trained_epochs(output).get("final", 0) == 0
