"""The shared CLI skeleton: one-line errors and exit codes, never a traceback."""
import pytest

from tfnets.cli import base_parser, int_list, run_main
from tfnets.errors import DataError, TrainingDiverged


def _parser():
    return base_parser("demo", "demo app", epochs=3, batch_size=8)


@pytest.mark.parametrize("argv, fragment", [
    (["--epochs", "-1"], "expected a positive integer, got -1"),
    (["--batch-size", "0"], "expected a positive integer, got 0"),
    (["--epochs", "many"], "expected a positive integer, got 'many'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_flags_exit_2_with_one_line(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err


def test_defaults_and_lists():
    args = _parser().parse_args([])
    assert (args.epochs, args.batch_size, args.seed, args.quick, args.jit) == (3, 8, 0, False, False)
    assert int_list("100,500") == [100, 500]


def _raiser(exc):
    def main(argv):
        raise exc
    return main


@pytest.mark.parametrize("exc, code, line", [
    (DataError("notMNIST not found: place it at /x"), 2, "error: notMNIST not found: place it at /x"),
    (TrainingDiverged("loss became nan in epoch 3"), 3, "error: loss became nan in epoch 3"),
    (ValueError("boom\nsecond line"), 1, "error: unexpected ValueError: boom (re-run with --debug for the traceback)"),
])
def test_run_main_maps_errors_to_one_line(exc, code, line, capsys):
    assert run_main(_raiser(exc), []) == code
    assert capsys.readouterr().err == line + "\n"


def test_debug_shows_the_traceback():
    with pytest.raises(DataError):
        run_main(_raiser(DataError("x")), ["--debug"])
