"""apps.mnist_cnn over a cluster (`tfnets-launch --workers 2`) computes what one plain process computes.

Small but whole: the dropout study (two one-epoch rates, one for each worker), then the final network, which needs
the study's choice. Each command runs once (module-scoped fixtures).
"""

import json

import pytest

from tests import cluster_helpers

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

APP = "mnist_cnn"
FLAGS = ["--quick", "--epochs", "1", "--dropout-rates", "0.0,0.5"]


@pytest.fixture(scope="module")
def plain(data_dir, tmp_path_factory):
    return cluster_helpers.ran("plain", APP, FLAGS, data_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def launched(data_dir, tmp_path_factory):
    return cluster_helpers.ran("launched", APP, FLAGS, data_dir, tmp_path_factory)


def final_dropout(out):
    config = json.loads((cluster_helpers.run_folder(out, APP) / "final" / "config.json").read_text())
    return config["final_dropout"]


def test_both_commands_succeed(plain, launched):
    for _, done in (plain, launched):
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_cluster_computes_what_one_process_computes(plain, launched):
    assert cluster_helpers.outcome(launched[0], APP) == cluster_helpers.outcome(plain[0], APP)
    assert final_dropout(launched[0]) == final_dropout(plain[0])


def test_both_workers_train_and_the_final_run_trains_nothing(launched):
    output = launched[1].stdout
    trained = cluster_helpers.trained_by(output)
    assert set(trained) >= {"tuner0", "tuner1"}, trained
    assert "final" in sum(trained.values(), [])  # the final network is a training of its own
    assert cluster_helpers.trained_epochs(output).get("final", 0) == 0
