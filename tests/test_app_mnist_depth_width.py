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
from tfnets.nn.augment import exportable


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
    config = app.Config.from_argv(["--sweep", "layers=[100],[60,40],[200],[150,50]"])
    assert app.plan_budgets(config) == {100: [[100], [60, 40]], 200: [[200], [150, 50]]}
    default = app.plan_budgets(app.Config.from_argv(["--budgets", "200", "--max-depth", "2"]))
    assert default == {200: [[200], [100, 100]]}
    assert app.plan_budgets(app.Config(budgets=(200,), max_depth=2)) == default  # the same from Python


def test_the_exported_architecture_does_not_depend_on_the_order_of_the_rows():
    """The app chooses from `Sweep.results()`, the results page from the same table read back as text (sorted by
    the objective): one rule, whatever the order and form of the rows."""
    rows = [
        {"trial": "layers=50_50", "layers": [50, 50], "status": "completed", "final_valid_accuracy": 0.97},
        {"trial": "layers=100", "layers": [100], "status": "completed", "final_valid_accuracy": 0.97},
        {"trial": "layers=25_25_25_25", "layers": [25] * 4, "status": "diverged"},
        {"trial": "layers=34_33_33", "layers": [34, 33, 33], "status": "completed", "final_valid_accuracy": 0.96},
    ]
    as_text = [{k: json.dumps(v) if k == "layers" else str(v) for k, v in row.items()} for row in rows]
    for order in (rows, rows[::-1], as_text, as_text[::-1]):
        assert app.best_architecture(order)["trial"] == "layers=100"  # the tie goes to the shallower network
    assert app.best_architecture(rows[2:3]) is None


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
    trials = result.parts["budget_40"].parts
    assert list(trials) == ["layers=40", "layers=20_20"]
    assert all(
        0.0 <= t.final["test_accuracy"] <= 1.0 and t.metrics.get("status", "completed") == "completed"
        for t in trials.values()
    )
    counted = [exportable(t.model).count_params() for t in trials.values()]
    assert counted == [app.count_parameters([40], 0.1), app.count_parameters([20, 20], 0.1)]
    (run,) = (out / "mnist_depth_width").iterdir()
    assert result.run_path.parent == run / "budget_40" / "trials"
    # The results page's number is the test accuracy of the architecture the app exported.
    exported = result.parts["budget_40"]
    assert app.headlines(run) == {
        "budget_40_test_accuracy": (exported.final["test_accuracy"], run / "budget_40" / "depth_results.csv")
    }
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
    assert result.export_path == model_dir
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["input_shape"] == [28, 28, 1] and metadata["layers"] == result.run.config["trial"]["layers"]
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
        (["--shift", "9"], "--shift must be between 0 and 8 pixels"),
    ],
)
def test_bad_flags_give_one_line_errors(tmp_path, capsys, flags, message):
    code = run_main(app.main, [*flags, "--out", str(tmp_path)])  # argparse's own errors included (exit 2)
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
