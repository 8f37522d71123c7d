"""apps.trigram_embedding over a cluster: `tfnets-launch --workers 2` shares the nets (an ensemble's one by one)
between two workers, and the launcher's final plain run scores the ensemble, writes the same tables and metrics as
one plain process and exports the same model, training nothing itself."""

import json

import pytest

from tests import cluster_helpers

APP = "trigram_embedding"
ENSEMBLE = "D128_P1024_relu_adam_drop0.5"  # the wide net: the ensemble's first net and its folder's stem
# Four nets, two epochs each: two specified ones and an ensemble of two wide nets (the ensemble alone declares its
# first net, the wide one, when `wide` is not asked for).
FLAGS = ["--quick", "--configs", "8x64,16x128", "--extra", "ensemble", "--ensemble-size", "2"]

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def exported(out):
    """The export's metadata but its run folder's path."""
    metadata = json.loads((out / "export" / APP / "metadata.json").read_text())
    return {k: v for k, v in metadata.items() if k != "run"}


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
    """The command as one plain process and through the launcher: {"plain"|"launched": (out, CompletedProcess)}."""
    return {how: cluster_helpers.ran(how, APP, FLAGS, data_dir, tmp_path_factory) for how in ("plain", "launched")}


def test_both_commands_succeed(runs):
    for how, (_, result) in runs.items():
        assert result.returncode == 0, f"{how}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_the_cluster_computes_what_one_process_computes(runs):
    plain = cluster_helpers.outcome(runs["plain"][0], APP)
    assert f"{ENSEMBLE}_x2/metrics.json" in plain  # the ensemble's own scores
    assert cluster_helpers.outcome(runs["launched"][0], APP) == plain
    # The same net exported: its calibration (a temperature fitted to its validation outputs) too.
    plain_export, launch_export = (exported(out) for out, _ in runs.values())
    assert "temperature" in plain_export and launch_export == plain_export


def test_both_workers_train_and_the_final_run_only_reports(runs):
    launch = runs["launched"][1]
    trained = cluster_helpers.trained_by(launch.stdout)
    assert {"tuner0", "tuner1"} <= set(trained), launch.stdout[-3000:]
    assert sorted(sum(trained.values(), [])) == sorted(["D8_P64", "D16_P128", ENSEMBLE, f"{ENSEMBLE}_seed1"])
    assert cluster_helpers.trained_epochs(launch.stdout).get("final", 0) == 0
