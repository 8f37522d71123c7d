"""apps.cifar_fc_net on a small real CIFAR-10 subset (--quick): every part's outputs, export + predict, errors."""

import json

import numpy as np
import pytest
from PIL import Image

from apps import cifar_fc_net, predict
from tfnets.data import load_cifar10
from tfnets.experiment.cli import run_main
from tfnets.experiment.export import ServedModel

SMALL = ["--quick", "--hidden", "64-32", "--batch-size", "50", "--max-trials", "2"]


@pytest.fixture(scope="module")
def quick_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cifar_fc")
    export = out / "export"
    result = cifar_fc_net.main(["--data-dir", str(data_dir), "--out", str(out), "--export-dir", str(export), *SMALL])
    run_dir = next((out / "cifar_fc_net").iterdir())
    return result, run_dir, export


@pytest.mark.slow
def test_every_part_reports_its_numbers(quick_run):
    result, run_dir, export = quick_run
    results = {name: part.metrics for name, part in result.parts.items()}
    assert list(results) == list(cifar_fc_net.PARTS)
    recorded = json.loads((run_dir / "results.json").read_text())
    assert recorded.keys() == results.keys()
    assert recorded["dropout"]["rows"] == results["dropout"]["rows"] and recorded["dropout"]["wall_time_s"] >= 0
    report = (run_dir / "report.md").read_text()
    for heading in (
        "Gradient check",
        "Overfitting 50 images",
        "Update rules",
        "Best net: sweep",
        "Best net: final training",
        "Dropout",
        "Normalisation: training speed",
        "Normalisation: weight-scale sweep",
    ):
        assert f"## {heading}" in report
    for figure in (
        "overfit_loss.png",
        "update_rules.png",
        "dropout.png",
        "normalization.png",
        "weight_scale.png",
        "best_final/curves.png",
    ):
        assert (run_dir / figure).stat().st_size > 0, figure
    # The gradient check meets the bar and the initial loss is ln 10.
    cases = results["gradcheck"]["cases"]
    assert len(cases) == 8 and max(c["max_rel_error"] for c in cases) <= 1e-6
    assert results["gradcheck"]["initial_loss_cifar"] == pytest.approx(np.log(10), abs=0.02)
    assert {r["update_rule"] for r in results["update_rules"]["rows"]} == {"sgd", "sgd_momentum", "rmsprop", "adam"}
    assert [r["keep_ratio"] for r in results["dropout"]["rows"]] == [1.0, 0.25]
    # The app's result is the exported "best" net's; its sweep is a part of it.
    assert result is not result.parts["best"] and result.final == result.parts["best"].final
    assert result.run_path == run_dir / "best_final" and result.export_path == export and result.model is not None
    assert {"train_accuracy", "valid_accuracy", "test_accuracy"} <= set(result.final)
    assert len(result.parts["best"].parts["sweep"].metrics["rows"]) == 2  # --max-trials 2
    assert recorded["best"]["final"] == result.final and len(recorded["best"]["sweep"]) == 2
    # The results page quotes the test accuracy of the net the app exported, from the folder it trained in.
    path = run_dir / "best_final" / "metrics.json"
    assert cifar_fc_net.headlines(run_dir) == {"test_accuracy": (result.final["test_accuracy"], path)}


@pytest.mark.slow
def test_export_predicts_a_cifar_png_like_the_trained_model(quick_run, data_dir, tmp_path, capsys):
    _, run_dir, export = quick_run
    served = ServedModel(export)
    assert served.input_shape == (32, 32, 3)
    data = load_cifar10(data_dir)
    image = data.x_test[:1].astype(np.uint8)
    Image.fromarray(image[0], mode="RGB").save(tmp_path / "cifar.png")
    probabilities = predict.main([str(export), str(tmp_path / "cifar.png"), "--raw"])  # the net's own softmax
    assert capsys.readouterr().out.startswith("cifar.png: ")
    # The export must reproduce the app's own preprocessing of raw pixels (ZCA by default), here recomputed
    # independently from an SVD of the training pixels: cov = V diag(S^2 / n) V^T, W = V diag((s + eps)^-1/2) V^T.
    import keras

    import tfnets.nn.models  # noqa: F401 - registers the custom classes for loading
    import tfnets.nn.preprocessing  # noqa: F401

    wrapper = keras.models.load_model(export / "model.keras")
    assert [type(layer).__name__ for layer in wrapper.layers] == ["ZCAWhitening", "FullyConnectedModel"]
    train = data.subset(300, 200, seed=0).x_train  # --quick trains on this subset: same statistics
    flat = train.reshape(300, -1).astype(np.float64) / 255
    mean = flat.mean(axis=0)
    _, singular, vt = np.linalg.svd(flat - mean, full_matrices=True)
    s = np.zeros(flat.shape[1])
    s[: len(singular)] = singular**2 / len(flat)
    eps = 0.1  # the app's default --zca-epsilon
    whitened = ((image.reshape(1, -1) / 255 - mean) @ (vt.T / np.sqrt(s + eps)) @ vt) / np.sqrt(np.mean(s / (s + eps)))
    expected = wrapper.layers[-1].predict(whitened.astype(np.float32), verbose=0)
    expected = np.exp(expected - expected.max()) / np.exp(expected - expected.max()).sum()
    np.testing.assert_allclose(probabilities[0], expected[0], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_same_seed_gives_the_same_numbers(quick_run, data_dir, tmp_path):
    # Two parts run again on their own, in a fresh folder, give the numbers they gave inside the whole quick run (same
    # seed; SMALL's flags concern other parts only): nothing depends on what ran before them in the process.
    again = cifar_fc_net.main(
        ["--data-dir", str(data_dir), "--out", str(tmp_path), "--quick", "--part", "overfit,dropout"]
    )
    assert set(again.parts) == {"overfit", "dropout"} and again.model is None  # no "best" part: nothing exported
    for name, part in again.parts.items():
        assert part.metrics == quick_run[0].parts[name].metrics, name


def test_rerun_resumes_finished_solver_runs_and_another_part_joins_the_same_folder(data_dir, tmp_path, capsys):
    args = ["--data-dir", str(data_dir), "--out", str(tmp_path), "--quick", "--part", "dropout"]
    first = cifar_fc_net.main(args)
    second = cifar_fc_net.main(args)
    assert "resuming after epoch 2 of 2" in capsys.readouterr().out
    assert first.parts["dropout"].metrics["rows"] == second.parts["dropout"].metrics["rows"]
    # --part only picks what runs: the gradient check is added to the same run folder and its results.json.
    third = cifar_fc_net.main([*args, "--part", "gradcheck"])
    assert third.run_path == first.run_path and list(third.parts) == ["gradcheck"]
    recorded = json.loads((first.run_path / "results.json").read_text())
    assert (
        set(recorded) == {"dropout", "gradcheck"}
        and recorded["dropout"]["rows"] == first.parts["dropout"].metrics["rows"]
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--part", "gradcheck,foo"],
            "--part got unknown value(s) 'foo'; choose a comma-separated list from gradcheck, "
            "overfit, update_rules, best, dropout, normalization, or 'all'",
        ),
        (["--epochs", "-3"], "positive integer"),
        (["--hidden", "100-abc"], "hidden sizes"),
        (["--sweep", "momentum=0.9"], "unknown sweep parameter"),
        (["--trial-epochs", "0"], "--trial-epochs"),
        (["--zca-epsilon", "0"], "--zca-epsilon must be > 0"),
        (["--inputs", "pca"], "invalid choice"),
    ],
)
def test_bad_flags_give_one_line_errors(tmp_path, capsys, flags, message):
    code = run_main(
        cifar_fc_net.main, ["--out", str(tmp_path), "--data-dir", str(tmp_path), *flags]
    )  # argparse's own errors included (exit 2)
    err = capsys.readouterr().err.strip()
    assert code != 0 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_batch_larger_than_data_and_missing_data_are_one_line_errors(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TFNETS_OFFLINE", "1")
    monkeypatch.delenv("TFNETS_DATA_DIR", raising=False)
    for extra, message in (
        (["--data-dir", str(data_dir), "--batch-size", "5000", "--part", "best"], "larger than"),
        (["--data-dir", str(tmp_path / "nowhere")], ""),
    ):
        capsys.readouterr()
        code = run_main(cifar_fc_net.main, ["--quick", "--out", str(tmp_path), *extra])
        err = capsys.readouterr().err
        lines = [text for text in err.splitlines() if text.startswith("error:")]
        assert code != 0 and len(lines) == 1 and message in lines[0], err[-500:]
        assert "Traceback" not in err
