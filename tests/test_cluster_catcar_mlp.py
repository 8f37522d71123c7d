"""apps.catcar_mlp over a cluster (`tfnets-launch --workers 2`) computes what one plain process computes.

Every part runs, small: part a's two-trial sweep, then what needs its choice (part a's network, part c's small and
large N, parts d and e, which start from the chosen init scale). Each command runs once (module-scoped fixtures).
"""

import json

import pytest

from tests import cluster_helpers

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

APP = "catcar_mlp"
# --quick with tiny networks, no augmentation and two one-epoch sweep trials: one for each worker.
FLAGS = [
    "--quick",
    "--sweep",
    "hidden=4,8",
    "--sweep-epochs",
    "1",
    "--two-layer",
    "8,4",
    "--small-hidden",
    "2",
    "--large-hidden",
    "16",
    "--augment",
    "none",
]


@pytest.fixture(scope="module")
def plain(data_dir, tmp_path_factory):
    return cluster_helpers.ran("plain", APP, FLAGS, data_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def launched(data_dir, tmp_path_factory):
    return cluster_helpers.ran("launched", APP, FLAGS, data_dir, tmp_path_factory)


def exported(out):
    return json.loads((cluster_helpers.run_folder(out, APP) / "exported.json").read_text())


def test_both_commands_succeed(plain, launched):
    for _, done in (plain, launched):
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_the_cluster_computes_what_one_process_computes(plain, launched):
    assert cluster_helpers.outcome(launched[0], APP) == cluster_helpers.outcome(plain[0], APP)


def test_the_exported_choice_is_the_same(plain, launched):
    assert exported(launched[0]) == exported(plain[0])


def test_both_workers_train_and_the_final_run_trains_nothing(launched):
    output = launched[1].stdout
    trained = cluster_helpers.trained_by(output)
    assert set(trained) >= {"tuner0", "tuner1"}, trained
    assert cluster_helpers.trained_epochs(output).get("final", 0) == 0
