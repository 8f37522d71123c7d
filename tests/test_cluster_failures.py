"""A training of its own that fails its NaN guard inside a cluster: its worker says why, the chief says which, and
the launch ends non-zero with one line (KerasTuner's wire format carries a trial's status but no message)."""

import re

import pytest

from tests import cluster_helpers

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_a_diverging_training_fails_its_trial_and_the_launch_says_which(data_dir, tmp_path):
    flags = ["--quick", "--learning-rate", "1e12"]  # one network, whose loss becomes NaN in its first epochs
    done = cluster_helpers.run(cluster_helpers.launch_command("notmnist_mlp", flags, tmp_path), data_dir)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    [(worker, reason)] = re.findall(r"^\[(tuner\d)\] training network failed: (.+)$", done.stdout, flags=re.M)
    assert "became nan" in reason and "try a lower learning rate" in reason
    assert f"[chief] chief: training network failed: see {worker}'s output" in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: chief failed: chief: training network failed: see {worker}'s output (stopped the others)"
    ]
    assert "[final]" not in done.stdout  # nothing to write the results of
