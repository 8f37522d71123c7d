"""Each app's run configuration is explicit (`get_config`): the run id hashes exactly those fields."""

import importlib

import pytest

from tfnets.experiment.cli import RUN_FLAGS
from tfnets.experiment.runs import run_id_for

APPS = [
    "notmnist_mlp",
    "notmnist_cnn",
    "dl_principles",
    "mnist_depth_width",
    "mnist_cnn",
    "catcar_mlp",
    "trigram_embedding",
    "cifar_fc_net",
]
# Flags that say where things live or how the work is split, for every app; and per app, the flags that only choose
# which parts or models run (each part/model has its own folder).
WHERE_AND_HOW = {"app", "data_dir", "out", "run_id", "export_dir", "debug", "steps_per_execution"}
SELECTION = {"catcar_mlp": {"part"}, "trigram_embedding": {"configs", "extra", "extra_lr", "ensemble_size"}}
# The search flags' part of a configuration (`tfnets.experiment.sweep.sweep_config`): the tuner is kept under its
# first name, and flags added after it enter the configuration only when set (existing run ids stay).
RENAMED = {"sweep_mode": "tuner"}
ONLY_WHEN_SET = {"objective", "trial_patience", "hyperband_factor"}


def _parsed(app, argv=(), extra_flag=False):
    module = importlib.import_module(f"apps.{app}")
    parser = module.build_parser()
    if extra_flag:
        parser.add_argument("--some-new-display-option", default="fancy")
    return module, parser.parse_args(list(argv))


@pytest.mark.parametrize("app", APPS)
def test_every_flag_is_either_configuration_or_declared_not_to_be(app):
    module, args = _parsed(app)
    config = {RENAMED.get(name, name) for name in module.get_config(args)}
    flags = {name for name in vars(args) if not name.startswith("_")}
    assert config <= flags  # no invented names
    unclassified = flags - config - WHERE_AND_HOW - SELECTION.get(app, set()) - ONLY_WHEN_SET
    assert not unclassified, f"add {sorted(unclassified)} to apps.{app}.get_config (or say why not here)"
    assert set(RUN_FLAGS) <= config


@pytest.mark.parametrize("app", APPS)
def test_an_unrelated_new_flag_does_not_change_the_run_id(app):
    module, plain = _parsed(app)
    _, with_flag = _parsed(app, extra_flag=True)
    assert run_id_for(module.get_config(plain)) == run_id_for(module.get_config(with_flag))


@pytest.mark.parametrize(
    "app, argv",
    [
        ("notmnist_mlp", ["--learning-rate", "0.02"]),
        ("mnist_cnn", ["--shift", "1"]),
        ("cifar_fc_net", ["--seed", "3"]),
        ("trigram_embedding", ["--merge", "sum"]),
        ("catcar_mlp", ["--sweep", "hidden=10,20"]),
        ("notmnist_mlp", ["--trial-patience", "2"]),
        ("notmnist_mlp", ["--tuner", "hyperband"]),
        ("notmnist_mlp", ["--objective", "val_accuracy"]),
    ],
)
def test_a_setting_that_changes_the_computation_changes_the_run_id(app, argv):
    module, plain = _parsed(app)
    _, changed = _parsed(app, argv)
    assert run_id_for(module.get_config(plain)) != run_id_for(module.get_config(changed))


@pytest.mark.parametrize(
    "app, argv",
    [
        ("catcar_mlp", ["--part", "c"]),
        ("trigram_embedding", ["--extra", "none"]),
        ("notmnist_mlp", ["--out", "x"]),
        # One graph call per batch or per epoch trains the same weights: a run started with either resumes with the other.
        ("notmnist_cnn", ["--steps-per-execution", "1"]),
    ],
)
def test_choosing_parts_or_folders_keeps_the_run_id(app, argv):
    module, plain = _parsed(app)
    _, changed = _parsed(app, argv)
    assert run_id_for(module.get_config(plain)) == run_id_for(module.get_config(changed))
