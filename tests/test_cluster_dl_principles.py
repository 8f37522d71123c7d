"""apps.dl_principles over a cluster: `tfnets-launch --workers 2` shares the networks of every part between two
workers, and the launcher's final plain run writes the same findings, tables and metrics as one plain process,
training nothing itself."""

import pytest

from tests import cluster_helpers

APP = "dl_principles"
# Every part: seven networks (A and B: two initialisations each; C: two orders; E: the XOR net), two epochs each.
FLAGS = ["--quick"]

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    """The command as one plain process and through the launcher: {"plain"|"launched": (out, CompletedProcess)}."""
    return {how: cluster_helpers.ran(how, APP, FLAGS, data_dir, tmp_path_factory) for how in ("plain", "launched")}


def test_both_commands_succeed(runs):
    for how, (_, result) in runs.items():
        assert result.returncode == 0, f"{how}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_the_cluster_computes_what_one_process_computes(runs):
    plain = cluster_helpers.outcome(runs["plain"][0], APP)
    assert any(path.endswith("metrics.json") for path in plain)
    assert cluster_helpers.outcome(runs["launched"][0], APP) == plain


def test_both_workers_train_and_the_final_run_only_reports(runs):
    launch = runs["launched"][1]
    trained = cluster_helpers.trained_by(launch.stdout)
    assert {"tuner0", "tuner1"} <= set(trained), launch.stdout[-3000:]
    expected = ["A_relu_glorot_uniform", "A_relu_zeros", "B_sigmoid_glorot_uniform", "B_sigmoid_zeros"]
    expected += ["C_shuffled", "C_sorted", "E_no_hidden_layer"]
    assert sorted(sum(trained.values(), [])) == expected  # each network once
    assert cluster_helpers.trained_epochs(launch.stdout).get("final", 0) == 0
    assert "part E hand-set XOR truth table" in launch.stdout  # the report comes from the final run
