"""apps.mnist_cnn: CNN arithmetic against hand math, the network's size, a quick real-data run, export, bad flags."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from apps import mnist_cnn as app
from apps import predict
from tfnets.experiment.cli import run_main
from tfnets.nn.augment import exportable


def test_cnn_arithmetic_matches_the_formulas():
    answers = app.cnn_arithmetic()
    assert answers["conv_parameters"] == 8 * (5 * 5 * 3) + 8 == 608
    assert answers["conv_output_shape"] == (32 - 5 + 1, 32 - 5 + 1, 8) == (28, 28, 8)
    for pattern, average, maximum in zip(answers["patterns"], answers["average_pooling"], answers["max_pooling"]):
        blocks = np.asarray(pattern, float).reshape(2, 2, 2, 2).transpose(0, 2, 1, 3)  # (row block, col block, 2, 2)
        np.testing.assert_allclose(average, blocks.mean(axis=(2, 3)))
        np.testing.assert_allclose(maximum, blocks.max(axis=(2, 3)))


def test_the_four_patterns_are_the_corner_block_and_its_rotations():
    patterns = app.corner_patterns()
    assert patterns[0][:2, :2].sum() == 4 and patterns[0].sum() == 4
    corners = {tuple(np.argwhere(p == 1).min(axis=0)) for p in patterns}
    assert corners == {(0, 0), (0, 2), (2, 0), (2, 2)}


def test_network_has_fewer_than_100k_parameters_counted_by_hand():
    conv = [(1, 16), (16, 32), (32, 32), (32, 64)]
    by_hand = sum(9 * a * b + 4 * b for a, b in conv) + (4 * 4 * 64) * 10 + 10  # no conv bias; BN 4 per channel
    model = app.build_classifier(0.25)
    assert model.count_params() == by_hand < app.PARAMETER_LIMIT
    assert model.output_shape == (None, 10)
    assert sum(isinstance(layer, keras.layers.Dropout) and layer.rate == 0.25 for layer in model.layers) == 3


@pytest.fixture(scope="module")
def quick_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    export = out / "saved"
    result = app.main(
        [
            "--quick",
            "--epochs",
            "1",
            "--dropout-rates",
            "0.0,0.5",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--export-dir",
            str(export),
        ]
    )
    return out, export, result


def test_quick_run_studies_dropout_then_trains_the_best_rate(quick_run):
    out, export, result = quick_run
    study = result.parts["dropout_study"].parts
    assert [trial.run.config["trial"]["dropout"] for trial in study.values()] == [0.0, 0.5]
    best = max(study.values(), key=lambda t: (t.final["valid_accuracy"], -t.run.config["trial"]["dropout"]))
    assert result.run.config["final_dropout"] == best.run.config["trial"]["dropout"]
    assert result.parts["dropout_study"].run_path == best.run_path
    assert exportable(result.model).count_params() == app.build_classifier(0.0).count_params()
    assert result.export_path == export
    (run,) = (out / "mnist_cnn").iterdir()
    report = (run / "report.md").read_text()
    for heading in (
        "CNN arithmetic",
        "**608 parameters**",
        "**28x28x8**",
        "Dropout study: 1 epoch(s) per rate",
        "Final network (dropout",
        "Final network: layers",
    ):
        assert heading in report
    assert (run / "dropout_study.png").stat().st_size > 1000
    metrics = json.loads((run / "final" / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and "test_accuracy" in metrics["final"]
    assert result.run_path == run / "final" and result.final == metrics["final"]
    # The results page quotes the final network and the study's rates, each from the file that holds it.
    table = run / "dropout_study" / "dropout_results.csv"
    assert app.headlines(run) == {
        "dropout_0_test_accuracy": (study["dropout=0.0"].final["test_accuracy"], table),
        "dropout_0.5_test_accuracy": (study["dropout=0.5"].final["test_accuracy"], table),
        "final_test_accuracy": (metrics["final"]["test_accuracy"], run / "final" / "metrics.json"),
    }


def test_exported_cnn_predicts_pngs_like_keras(quick_run, data_dir, tmp_path):
    _, export, _ = quick_run
    digits = np.load(data_dir / "mnist.npz")["x_test"][:2]
    for i, digit in enumerate(digits):
        Image.fromarray(digit).save(tmp_path / f"d{i}.png")
    served = predict.main([str(export), str(tmp_path / "d0.png"), str(tmp_path / "d1.png"), "--raw"])
    keras_model = keras.models.load_model(export / "model.keras")
    logits = keras_model.predict(digits[..., None].astype("float32") / 255.0, verbose=0)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(served, expected / expected.sum(1, keepdims=True), rtol=1e-4, atol=1e-5)


def test_fixed_dropout_skips_the_study(data_dir, tmp_path):
    result = app.run(
        app.Config.from_argv(["--quick", "--epochs", "1", "--dropout", "0.3"]),
        data_dir=str(data_dir),
        out=str(tmp_path),
        export_dir=str(tmp_path / "saved"),
    )
    assert result.parts == {} and result.run.config["final_dropout"] == 0.3
    assert not (result.run_path.parent / "dropout_study").exists()


def test_arithmetic_only_trains_nothing(tmp_path):
    assert app.run(arithmetic_only=True, out=str(tmp_path), export_dir=str(tmp_path / "saved")) is None
    (run,) = (tmp_path / "mnist_cnn").iterdir()
    assert "**608 parameters**" in (run / "report.md").read_text()
    assert not (run / "final").exists() and not (tmp_path / "saved").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--dropout-rates", "0.1,1.2"], "--dropout-rates must be numbers in [0, 1)"),
        (["--dropout", "-0.1"], "--dropout must be in [0, 1)"),
        (["--shift", "20"], "--shift must be between 0 and 8"),
    ],
)
def test_bad_flags_give_one_line_errors(tmp_path, capsys, flags, message):
    assert run_main(app.main, [*flags, "--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
