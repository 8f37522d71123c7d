"""The shared CLI skeleton: one-line errors and exit codes, never a traceback; the common flags every app's
`Config` derives."""

import ast
import dataclasses
from pathlib import Path

import pytest

from tfnets.errors import ConfigError, DataError, TrainingDiverged
from tfnets.experiment.cli import choice_list, run_main
from tfnets.experiment.config import CommonConfig, batch_size_option, int_list


@dataclasses.dataclass(frozen=True)
class DemoConfig(CommonConfig):
    APP = "demo"
    EPOCHS = 3
    batch_size: int = batch_size_option(8)


def _parser():
    return DemoConfig.parser()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--epochs", "-1"], "expected a positive integer, got -1"),
        (["--batch-size", "0"], "expected a positive integer, got 0"),
        (["--epochs", "many"], "expected a positive integer, got 'many'"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--steps-per-execution", "10"], "expected 'epoch' or 1, got '10'"),  # would credit losses to wrong epochs
        (["--steps-per-execution", "0"], "expected 'epoch' or 1, got '0'"),
        (["--steps-per-execution", "auto"], "expected 'epoch' or 1, got 'auto'"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err


def test_defaults_and_lists():
    config = DemoConfig.from_argv([])
    assert (config.train_epochs, config.batch_size, config.seed, config.quick, config.jit) == (3, 8, 0, False, False)
    assert int_list("100,500") == (100, 500)
    assert config.steps_per_execution == "epoch"
    assert DemoConfig.from_argv(["--quick"]).train_epochs == 2 and DemoConfig.from_argv(["--no-jit"]).jit is False


@pytest.mark.parametrize("text, value", [("epoch", "epoch"), ("Epoch", "epoch"), ("1", 1)])
def test_steps_per_execution_flag(text, value):
    assert DemoConfig.from_argv(["--steps-per-execution", text]).steps_per_execution == value


def _raiser(exc):
    def main(argv):
        raise exc

    return main


@pytest.mark.parametrize(
    "exc, code, line",
    [
        (DataError("notMNIST not found: place it at /x"), 2, "error: notMNIST not found: place it at /x"),
        (TrainingDiverged("loss became nan in epoch 3"), 3, "error: loss became nan in epoch 3"),
        (
            ValueError("boom\nsecond line"),
            1,
            "error: unexpected ValueError: boom (re-run with --debug for the traceback)",
        ),
    ],
)
def test_run_main_maps_errors_to_one_line(exc, code, line, capsys):
    assert run_main(_raiser(exc), []) == code
    assert capsys.readouterr().err == line + "\n"


def test_run_main_returns_what_argparse_exits_with(capsys):
    def main(argv):
        _parser().parse_args(argv)

    assert run_main(main, ["--help"]) == 0 and "usage:" in capsys.readouterr().out
    assert run_main(main, ["--no-such-flag"]) == 2
    assert capsys.readouterr().err.startswith("error: unrecognized arguments: --no-such-flag")  # one line
    assert run_main(lambda argv: exit("stopped: no data"), []) == 1
    assert capsys.readouterr().err == "stopped: no data\n"


def test_debug_shows_the_traceback():
    with pytest.raises(DataError):
        run_main(_raiser(DataError("x")), ["--debug"])


PARTS = ("gradcheck", "overfit", "best")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("best", ["best"]),
        ("best, gradcheck", ["best", "gradcheck"]),  # the user's order, spaces ignored
        ("Overfit,BEST", ["overfit", "best"]),  # any case in, the canonical spelling out
        ("best,gradcheck,best,,", ["best", "gradcheck"]),  # repeats and empty items dropped
        ("ALL", ["gradcheck", "overfit", "best"]),  # every choice, in the declared order
        ("none", []),
    ],
)
def test_choice_list_accepts(text, expected):
    parse = choice_list(PARTS, name="--part", allow_all=True, allow_none=True)
    assert parse(text) == expected


@pytest.mark.parametrize(
    "kwargs, text, fragment",
    [
        (
            {},
            "best,foo,Bar",
            "--part got unknown value(s) 'foo', 'Bar'; choose a comma-separated list from gradcheck, overfit, best",
        ),
        ({}, "", "--part is empty; choose a comma-separated list from gradcheck, overfit, best"),
        ({}, " , ", "--part is empty"),
        ({}, "all", "unknown value(s) 'all'"),  # keywords exist only when asked for
        ({}, "none", "unknown value(s) 'none'"),
        ({"allow_all": True}, "x", "from gradcheck, overfit, best, or 'all'"),
        ({"allow_all": True, "allow_none": True}, "x", "from gradcheck, overfit, best, or 'all' or 'none'"),
        ({"allow_none": True}, "best,none", "'none' must be given alone"),
        ({"allow_all": True}, "all,best", "'all' must be given alone"),
    ],
)
def test_choice_list_rejects_with_one_line(kwargs, text, fragment):
    with pytest.raises(ConfigError) as err:
        choice_list(PARTS, name="--part", **kwargs)(text)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_choice_list_as_argparse_type_reaches_run_main_as_one_line(capsys):
    def main(argv):
        parser = _parser()
        parser.add_argument(
            "--extra", type=choice_list(("adam", "big"), name="--extra", allow_none=True), default="adam,big"
        )
        return parser.parse_args(argv)

    assert main([]).extra == ["adam", "big"]  # a string default goes through the type too
    assert main(["--extra", "none"]).extra == []
    assert run_main(main, ["--extra", "adam,huge"]) == ConfigError.exit_code
    assert capsys.readouterr().err == (
        "error: --extra got unknown value(s) 'huge'; choose a comma-separated list from adam, big, or 'none'\n"
    )


def test_choice_list_rejects_ambiguous_choices():
    with pytest.raises(ValueError):
        choice_list(("a", "A"), name="--x")
    with pytest.raises(ValueError):
        choice_list(("all", "b"), name="--x", allow_all=True)


def test_every_app_runs_its_main_through_exit_with():
    # The error tests call `run_main(app.main, argv)` in-process; this is what ties them to `python -m apps.X`
    # (two of them also run the real command in a subprocess).
    apps = sorted(
        p
        for p in (Path(__file__).resolve().parents[1] / "apps").glob("*.py")
        if not p.name.startswith("_")  # the package and an app's helper modules
    )
    assert len(apps) >= 10
    for path in apps:
        tree = ast.parse(path.read_text())
        guard = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
        assert len(guard) == 1 and ast.unparse(guard[0].body[-1]) == "exit_with(main)", path.name
