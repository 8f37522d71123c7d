"""apps.mnist_depth_width: budget splits, parameter counts, a quick real-data run, export + predict, bad flags."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from apps import mnist_depth_width as app
from apps import predict
from tfnets.experiment.cli import run_main
from tfnets.experiment.export import ServedModel


def test_architectures_spend_exactly_the_budget_on_equal_layers():
    assert app.architectures(100, 4) == [[100], [50, 50], [34, 33, 33], [25, 25, 25, 25]]
    for budget in (100, 200, 1000):
        for layers in app.architectures(budget, 4):
            assert sum(layers) == budget and max(layers) - min(layers) <= 1
    assert app.architectures(1000, 3)[2] == [334, 333, 333]


def test_parameter_count_matches_the_formula():
    # Dense without bias (BN's beta is the bias) + 4 BN values per unit + the 10-way output layer with bias.
    def formula(layers):
        sizes = [784, *layers]
        hidden = sum(a * b + 4 * b for a, b in zip(sizes[:-1], sizes[1:]))
        return hidden + sizes[-1] * 10 + 10

    for layers in ([100], [50, 50], [34, 33, 33]):
        assert app.count_parameters(layers, dropout=0.1) == formula(layers)


def test_sweep_flag_groups_architectures_by_total_units():
    args = app.build_parser().parse_args(["--sweep", "layers=[100],[60,40],[200],[150,50]"])
    assert app.plan_budgets(args) == {100: [[100], [60, 40]], 200: [[200], [150, 50]]}
    default = app.plan_budgets(app.build_parser().parse_args(["--budgets", "200", "--max-depth", "2"]))
    assert default == {200: [[200], [100, 100]]}


@pytest.fixture(scope="module")
def quick_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("dw")
    export = out / "saved"
    result = app.main(
        [
            "--quick",
            "--budgets",
            "40",
            "--max-depth",
            "2",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
            "--export-dir",
            str(export),
        ]
    )
    return out, export, result


def test_quick_run_tabulates_every_architecture_and_writes_the_report(quick_run):
    out, _, result = quick_run
    rows = result["rows"]
    assert [r["layers"] for r in rows] == ["[40]", "[20, 20]"]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 and r["status"] == "completed" for r in rows)
    assert [r["parameters"] for r in rows] == [app.count_parameters([40], 0.1), app.count_parameters([20, 20], 0.1)]
    (run,) = (out / "mnist_depth_width").iterdir()
    report = (run / "report.md").read_text()
    for heading in (
        "## Data",
        "## Recipe",
        "Depth vs width: accuracy and parameters",
        "Best architecture per budget",
        "Test accuracy vs depth",
    ):
        assert heading in report
    assert (run / "depth_vs_accuracy.png").stat().st_size > 1000
    trial = run / "budget_40" / "trials" / "layers=40" / "metrics.json"
    assert {"train_accuracy", "valid_accuracy", "test_accuracy"} <= set(json.loads(trial.read_text())["final"])


def test_exported_model_serves_single_png_like_keras(quick_run, data_dir, tmp_path, capsys):
    _, export, result = quick_run
    model_dir = export / "budget_40"
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["input_shape"] == [28, 28, 1] and metadata["layers"] == json.loads(result["best"][0]["layers"])
    digits = np.load(data_dir / "mnist.npz")["x_test"][:3]
    for i, digit in enumerate(digits):
        Image.fromarray(digit).save(tmp_path / f"d{i}.png")
    served = predict.main([str(model_dir), *(str(tmp_path / f"d{i}.png") for i in range(3)), "--top-k", "1", "--raw"])
    assert len(capsys.readouterr().out.splitlines()) == 3
    # One image at a time must give what the Keras classifier gives (inference mode: no shift, BN moving stats).
    keras_model = keras.models.load_model(model_dir / "model.keras")
    logits = keras_model.predict(digits[..., None].astype("float32") / 255.0, verbose=0)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(served, expected / expected.sum(1, keepdims=True), rtol=1e-4, atol=1e-5)
    assert not any("random" in layer.name for layer in keras_model.layers)
    single = ServedModel(model_dir).predict_proba(ServedModel(model_dir).prepare_images(digits[:1]), raw=True)
    np.testing.assert_allclose(single, served[:1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--sweep", "depth=3"], "unknown sweep parameter 'depth'"),
        (["--sweep", "layers=[0]"], "bad value in --sweep"),
        (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
        (["--budgets", "0"], "expected a positive integer"),
    ],
)
def test_bad_flags_give_one_line_errors(tmp_path, capsys, flags, message):
    code = run_main(app.main, [*flags, "--out", str(tmp_path)])  # argparse's own errors included (exit 2)
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
