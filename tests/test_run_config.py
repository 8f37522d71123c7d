"""Each app's configuration is declared once (`Config`): the command line, config files and Python all build it, and
the run id hashes exactly the fields that define what a run computes."""

import dataclasses
import importlib
import json

import pytest

import apps
from tfnets.errors import ConfigError
from tfnets.experiment.config import CommonConfig, option
from tfnets.experiment.runs import run_id_for

APPS = apps.discover()


def _config(app, argv=()):
    return importlib.import_module(f"apps.{app}").Config.from_argv(list(argv))


def _run_id(app, config):
    return run_id_for({"app": app, **config.identity()})


def test_the_training_apps_are_discovered():
    # Not a typed-in list: every module of `apps` with a Config and a run. The tools beside them are not apps.
    assert "notmnist_cnn" in APPS and "predict" not in APPS and "results" not in APPS


@pytest.mark.parametrize("app", APPS)
def test_every_field_is_declared_with_its_role_and_the_identity_covers_exactly_the_identity_fields(app):
    config = _config(app)
    fields = dataclasses.fields(config)
    undeclared = [f.name for f in fields if "tfnets" not in f.metadata]
    assert not undeclared, f"declare {undeclared} with tfnets.experiment.config.option(...)"
    where = {f.name for f in fields if not f.metadata["tfnets"]["identity"]}
    assert {"data_dir", "out", "run_id", "export_dir", "debug", "steps_per_execution"} <= where
    assert {f.name for f in fields} - where <= set(config.identity())
    assert not set(config.identity()) & where


@pytest.mark.parametrize("app", APPS)
def test_an_unrelated_new_field_does_not_change_the_run_id(app):
    base = importlib.import_module(f"apps.{app}").Config

    @dataclasses.dataclass(frozen=True)
    class WithDisplayOption(base):
        some_new_display_option: str = option("fancy", "how to show it", identity=False)

    assert _run_id(app, WithDisplayOption.from_argv([])) == _run_id(app, base.from_argv([]))


CHANGES = [
    ("notmnist_mlp", ["--learning-rate", "0.02"]),
    ("mnist_cnn", ["--shift", "1"]),
    ("cifar_fc_net", ["--seed", "3"]),
    ("cifar_fc_net", ["--inputs", "standardize"]),
    ("trigram_embedding", ["--merge", "sum"]),
    ("catcar_mlp", ["--sweep", "hidden=10,20"]),
    ("notmnist_mlp", ["--trial-patience", "2"]),
    ("notmnist_mlp", ["--tuner", "hyperband"]),
    ("notmnist_mlp", ["--objective", "val_accuracy"]),
    ("notmnist_cnn", ["--recipe", "improved"]),
    ("notmnist_cnn", ["--quick"]),
    ("catcar_mlp", ["--two-layer", "256,64"]),
    ("dl_principles", ["--order-epochs", "3"]),
]
SAME = [
    ("catcar_mlp", ["--part", "c"]),
    ("dl_principles", ["--part", "C"]),
    ("trigram_embedding", ["--extra", "none"]),
    ("trigram_embedding", ["--configs", "8x16", "--ensemble-size", "4", "--extra-lr", "1e-3"]),
    ("cifar_fc_net", ["--part", "dropout"]),
    ("notmnist_mlp", ["--out", "x"]),
    # One graph call per batch or per epoch trains the same weights: a run started with either resumes with the other.
    ("notmnist_cnn", ["--steps-per-execution", "1"]),
    # The default spelled out is the default.
    ("notmnist_cnn", ["--keep-prob", "1"]),
]


@pytest.mark.parametrize("app, argv", CHANGES)
def test_a_setting_that_changes_the_computation_changes_the_run_id(app, argv):
    assert _run_id(app, _config(app)) != _run_id(app, _config(app, argv))


@pytest.mark.parametrize("app, argv", SAME)
def test_choosing_parts_or_folders_keeps_the_run_id(app, argv):
    assert _run_id(app, _config(app)) == _run_id(app, _config(app, argv))


@pytest.mark.parametrize("app", APPS)
def test_a_printed_or_recorded_configuration_replays_to_the_same_configuration_and_run_id(app, tmp_path, capsys):
    config = _config(app, ["--quick", "--seed", "3", "--epochs", "1"])
    with pytest.raises(SystemExit) as stop:
        _config(app, ["--quick", "--seed", "3", "--epochs", "1", "--print-config"])
    assert stop.value.code == 0
    printed = tmp_path / "printed.json"
    printed.write_text(capsys.readouterr().out)
    assert _config(app, ["--config", str(printed)]) == config
    # A run folder's config.json (identity at the top, every setting under "settings") replays the same run id.
    recorded = tmp_path / "config.json"
    recorded.write_text(json.dumps({"app": app, **config.identity(), "settings": config.settings()}))
    replayed = _config(app, ["--config", str(recorded)])
    assert _run_id(app, replayed) == _run_id(app, config)
    # Flags override the file.
    assert _config(app, ["--config", str(recorded), "--seed", "4"]).seed == 4


def test_yaml_and_toml_files_are_read_too(tmp_path):
    (tmp_path / "c.yaml").write_text("app: notmnist_cnn\nsettings:\n  l2: 0.1\n  quick: true\n")
    (tmp_path / "c.toml").write_text("l2 = 0.1\nquick = true\n")
    for name in ("c.yaml", "c.toml"):
        config = _config("notmnist_cnn", ["--config", str(tmp_path / name)])
        assert (config.l2, config.quick) == (0.1, True)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"app": "notmnist_mlp", "settings": {}}', "is a configuration of notmnist_mlp, not of notmnist_cnn"),
        ('{"l2": 0.1, "wings": 2}', "unknown setting(s) wings"),
        ("{not json", "is not valid JSON"),
        ('{"l2": -1}', "--l2 must be >= 0"),
        ('{"epochs": "many"}', "--epochs: expected a positive integer"),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as err:
        _config("notmnist_cnn", ["--config", str(path)])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_bad_value_is_the_same_line_from_the_command_line_a_file_and_python(tmp_path, capsys):
    from apps import notmnist_cnn
    from tfnets.experiment.cli import run_main

    assert run_main(notmnist_cnn.main, ["--keep-prob", "1.5"]) == 2
    from_cli = capsys.readouterr().err.strip()
    (tmp_path / "c.json").write_text('{"keep_prob": 1.5}')
    with pytest.raises(ConfigError) as from_file:
        _config("notmnist_cnn", ["--config", str(tmp_path / "c.json")])
    with pytest.raises(ConfigError) as from_python:
        notmnist_cnn.Config(keep_prob=1.5)
    assert from_cli == f"error: {from_file.value}" == f"error: {from_python.value}"
    with pytest.raises(ConfigError, match="unknown setting"):
        notmnist_cnn.Config.make(None, wings=2)


def test_derived_values_are_properties_never_written_back():
    quick = CommonConfig(quick=True)
    assert quick.epochs is None and quick.train_epochs == min(CommonConfig.EPOCHS, 2)
    assert dataclasses.replace(quick, quick=False).train_epochs == CommonConfig.EPOCHS
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.epochs = 3
