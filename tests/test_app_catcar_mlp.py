"""apps.catcar_mlp: data preparation, the tanh-output metrics, and the whole pipeline on a small real subset."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from apps import _catcar_mlp_data, _catcar_mlp_mse, catcar_mlp, predict
from tfnets.data import Splits
from tfnets.errors import ConfigError
from tfnets.experiment.cli import run_main
from tfnets.nn.metrics import ClassificationError, SignAccuracy, classification_error_percent, sign_accuracy

# A small but complete run: one sweep trial, tiny networks, no augmentation, 2 epochs (--quick).
QUICK = [
    "--quick",
    "--sweep",
    "hidden=4",
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


# -- metrics ----------------------------------------------------------------------------------------------


def test_sign_metrics_match_a_plain_count():
    rng = np.random.default_rng(0)
    targets = rng.choice([-1.0, 1.0], size=50).astype("float32")
    outputs = np.tanh(rng.normal(size=50)).astype("float32")
    wrong = sum(1 for t, y in zip(targets, outputs) if (y > 0) != (t > 0))
    np.testing.assert_allclose(np.mean(sign_accuracy(targets, outputs[:, None])), 1 - wrong / 50, rtol=1e-6)
    np.testing.assert_allclose(np.mean(classification_error_percent(targets, outputs)), 100 * wrong / 50, rtol=1e-5)
    accuracy, mce = SignAccuracy(), ClassificationError()
    accuracy.update_state(targets, outputs[:, None])
    mce.update_state(targets, outputs[:, None])
    assert accuracy.name == "accuracy" and mce.name == "mce"
    np.testing.assert_allclose(float(accuracy.result()), 1 - wrong / 50, rtol=1e-6)
    np.testing.assert_allclose(float(mce.result()), 100 * wrong / 50, rtol=1e-5)


def test_an_output_of_exactly_zero_counts_as_class_zero_like_the_export():
    # tfnets.experiment.export reads a tanh output > 0 as class 1; 0 must therefore be "cat" (-1).
    assert float(np.mean(sign_accuracy(np.array([-1.0, 1.0]), np.array([0.0, 0.0])))) == 0.5


# -- data preparation -------------------------------------------------------------------------------------


def _toy_splits(n=100):
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], n // 2)
    return Splits(
        rng.uniform(size=(n, 32, 32)).astype("float32"),
        y,
        np.zeros((0, 32, 32), "float32"),
        np.zeros(0, int),
        rng.uniform(size=(10, 32, 32)).astype("float32"),
        np.arange(10) % 2,
        class_names=("cat", "car"),
        note="no validation split (as in the assignment)",
    )


def test_validation_is_stratified_disjoint_and_seeded():
    data = _toy_splits()
    carved = _catcar_mlp_data.carve_validation(data, 20, seed=3)
    assert len(carved.y_valid) == 20 and len(carved.y_train) == 80
    assert np.bincount(carved.y_valid).tolist() == [10, 10]
    train_rows = {row.tobytes() for row in carved.x_train}
    assert not any(row.tobytes() in train_rows for row in carved.x_valid)
    again = _catcar_mlp_data.carve_validation(data, 20, seed=3)
    np.testing.assert_array_equal(carved.x_valid, again.x_valid)
    assert not np.array_equal(carved.x_valid, _catcar_mlp_data.carve_validation(data, 20, seed=4).x_valid)
    with pytest.raises(ConfigError, match="--num-validation"):
        _catcar_mlp_data.carve_validation(data, 100, seed=0)


def test_shift_moves_pixels_and_repeats_the_edge():
    image = np.arange(16, dtype=float).reshape(1, 4, 4)
    down = _catcar_mlp_data.shifted(image, 1, 0)[0]
    np.testing.assert_array_equal(down[1:], image[0, :-1])  # row r comes from row r-1
    np.testing.assert_array_equal(down[0], image[0, 0])  # the uncovered top row repeats the edge
    left = _catcar_mlp_data.shifted(image, 0, -2)[0]
    np.testing.assert_array_equal(left[:, :2], image[0, :, 2:])


def test_augment_sizes_and_labels():
    images = np.random.default_rng(0).uniform(size=(6, 32, 32))
    labels = np.array([0, 1, 0, 1, 1, 0])
    flipped, flipped_labels = _catcar_mlp_data.augment(images, labels, "flip")
    np.testing.assert_array_equal(flipped[6:], images[:, :, ::-1])
    np.testing.assert_array_equal(flipped_labels, np.tile(labels, 2))
    many, many_labels = _catcar_mlp_data.augment(images, labels, "flip+shift")
    assert many.shape == (60, 32, 32) and np.array_equal(many_labels, np.tile(labels, 10))
    same, _ = _catcar_mlp_data.augment(images, labels, "none")
    assert same is images


@pytest.mark.parametrize("inputs", ["raw", "center", "standardize", "zca"])
def test_export_scaling_reproduces_the_training_inputs(inputs):
    data = _catcar_mlp_data.carve_validation(_toy_splits(), 20, seed=0)
    config = catcar_mlp.Config(augment="none", inputs=inputs, zca_epsilon=0.1)
    prepared, (pixel_scale, mean_image, whitening) = _catcar_mlp_data.prepare(data, config)
    raw_pixels = data.x_test.reshape(len(data.x_test), -1) * 255.0
    served = raw_pixels * pixel_scale - (0 if mean_image is None else mean_image)
    if inputs == "zca":  # the export runs the whitening layer on the scaled pixels
        served = whitening.layer()(served.astype(np.float32)).numpy()
        centred = prepared.x_train - prepared.x_train.mean(axis=0)
        train_pixels = data.x_train.reshape(len(data.x_train), -1)
        assert float(centred.std()) == pytest.approx(float((train_pixels - train_pixels.mean(axis=0)).std()), rel=1e-3)
    else:
        assert whitening is None
    np.testing.assert_allclose(served, prepared.x_test, rtol=1e-4, atol=1e-4)
    assert set(np.unique(prepared.y_train)) == {-1.0, 1.0}


def test_mse_vs_mce_reports_correlation_and_best_epochs():
    history = [
        {"epoch": e, "loss": 1.0 / e, "mce": 40.0 / e, "test_loss": 0.5 + abs(e - 3) / 10, "test_mce": 20.0 - e}
        for e in range(1, 6)
    ]
    rows = {row["split"]: row for row in _catcar_mlp_mse.mse_vs_mce(history)}
    assert set(rows) == {"train", "test"}
    assert rows["train"]["pearson_r(mse,mce)"] == pytest.approx(1.0)
    assert rows["test"]["epoch_min_mse"] == 3 and rows["test"]["epoch_min_mce"] == 5
    assert rows["train"]["last_mce_%"] == pytest.approx(8.0)


# -- the whole app on real data ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("catcar")
    argv = [*QUICK, "--data-dir", str(data_dir), "--out", str(out), "--export-dir", str(out / "export")]
    result = catcar_mlp.main(argv)
    run_dir = next((out / "catcar_mlp").iterdir())
    return argv, result, run_dir, out / "export"


def test_quick_run_writes_every_part(quick_run):
    _, result, run_dir, _ = quick_run
    assert set(result.parts) == {
        "a: one hidden layer",
        "c: N=2",
        "c: N=16",
        "d: two hidden layers",
        "e: two hidden layers + momentum",
    }
    report = (run_dir / "report.md").read_text()
    for heading in (
        "## Part a: sweep",
        "## Part b: does MSE track",
        "## Part c:",
        "## Part d:",
        "## Part e:",
        "## Summary",
        "## Exported model",
        "## Test images",
    ):
        assert heading in report
    assert "validation = 190 training images (stratified random, seed 0)" in report
    metrics = json.loads((run_dir / "part_a_final" / "metrics.json").read_text())
    assert {"train_loss", "train_mce", "valid_loss", "valid_mce", "test_loss", "test_mce"} <= set(metrics["final"])
    assert 0 <= metrics["final"]["test_mce"] <= 100
    assert (run_dir / "part_a_results.csv").exists() and (run_dir / "test_examples.png").exists()
    history = (run_dir / "part_e" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "mce", "test_loss", "test_mce"} <= set(history)


def test_the_result_and_the_results_page_name_the_exported_network(quick_run):
    """`run` returns the exported network (the lowest final validation MSE of every part's), and `headlines` quotes
    that same network's test accuracy, read from the app's own record of its choice."""
    _, result, run_dir, export = quick_run
    chosen = min(result.parts.values(), key=lambda part: part.final["valid_loss"])
    assert result.run_path == chosen.run_path and result.final == chosen.final
    assert result.export_path == export and result.model is not None
    assert all(part.model is not None for part in result.parts.values())
    value, path = catcar_mlp.headlines(run_dir)["test_accuracy"]
    assert value == chosen.final["test_accuracy"] and path == chosen.run_path / "metrics.json"
    # A run of some parts only (the same run folder: `--part` is not part of the run id) is not the assignment's
    # answer: the page quotes none until every part has been chosen among.
    record = json.loads((run_dir / catcar_mlp.EXPORTED_FILE).read_text())
    assert record["folder"] == chosen.run_path.name and record["parts"] == list(catcar_mlp.PARTS)
    (run_dir / catcar_mlp.EXPORTED_FILE).write_text(json.dumps({**record, "parts": ["d"]}))
    try:
        assert catcar_mlp.headlines(run_dir) == {}
    finally:
        (run_dir / catcar_mlp.EXPORTED_FILE).write_text(json.dumps(record))


def test_exported_model_classifies_a_png_like_the_keras_model(quick_run, data_dir, tmp_path, capsys):
    _, _, _, export = quick_run
    metadata = json.loads((export / "metadata.json").read_text())
    assert metadata["output"] == "tanh" and metadata["class_names"] == ["cat", "car"]
    from tfnets.data import load_catcar

    image = load_catcar(data_dir).x_test[0]
    pixels = np.round(image * 255).astype("uint8")
    Image.fromarray(pixels, mode="L").save(tmp_path / "test0.png")
    probabilities = predict.main([str(export), str(tmp_path / "test0.png"), "--top-k", "2", "--raw"])
    assert capsys.readouterr().out.startswith("test0.png: ")
    model = keras.models.load_model(export / "model.keras")
    mean = np.load(export / "mean_image.npy") if metadata["mean_image"] else 0.0
    x = pixels.reshape(1, -1).astype("float32") * metadata["pixel_scale"] - mean
    output = float(model.predict(x, verbose=0)[0, 0])
    np.testing.assert_allclose(probabilities[0, 1], (output + 1) / 2, rtol=1e-4, atol=1e-5)
    # Calibrated (the default): P(car) = sigmoid(2 atanh(output) / T), T fitted on the validation split at export.
    temperature = metadata["temperature"]
    assert temperature > 0 and metadata["calibration"]["test_examples"] > 0
    calibrated = predict.main([str(export), str(tmp_path / "test0.png"), "--top-k", "2"])
    expected = 1 / (1 + np.exp(-2 * np.arctanh(output) / temperature))
    np.testing.assert_allclose(calibrated[0, 1], expected, rtol=1e-4, atol=1e-5)


def test_same_seed_gives_the_same_metrics(data_dir, tmp_path):
    def once(folder):
        catcar_mlp.main(
            [
                "--quick",
                "--part",
                "d",
                "--two-layer",
                "8,4",
                "--augment",
                "none",
                "--data-dir",
                str(data_dir),
                "--out",
                str(folder),
                "--export-dir",
                str(folder / "export"),
            ]
        )
        path = next((folder / "catcar_mlp").iterdir()) / "part_d" / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics.pop("timing")
        return metrics

    assert once(tmp_path / "first") == once(tmp_path / "second")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (
            ["--part", "a,z"],
            "--part got unknown value(s) 'z'; choose a comma-separated list from a, b, c, d, e, or 'all'",
        ),
        (["--part", "e", "--momentum", "1.5"], "--momentum must be in (0, 1)"),
        (["--num-validation", "5000"], "--num-validation 5000 must be smaller"),
        (["--sweep", "depth=1,2"], "unknown sweep parameter 'depth'"),
        (["--small-hidden", "50", "--large-hidden", "50"], "--small-hidden (50) must be smaller than --large-hidden"),
    ],
)
def test_bad_settings_stop_with_one_line(data_dir, tmp_path, capsys, argv, fragment):
    code = run_main(catcar_mlp.main, [*argv, "--quick", "--data-dir", str(data_dir), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("error: ") and fragment in err[0]


@pytest.mark.parametrize(
    "settings, fragment",
    [
        ({"part": "a,z"}, "--part got unknown value(s) 'z'"),
        ({"part": ("e",), "momentum": 1.5}, "--momentum must be in (0, 1)"),
        ({"two_layer": ""}, "--two-layer expects sizes like 512,64"),
        ({"sweep": ("depth=1,2",)}, "unknown sweep parameter 'depth'"),
    ],
)
def test_bad_settings_from_python_are_the_same_one_line_error(settings, fragment):
    with pytest.raises(ConfigError) as err:
        catcar_mlp.Config(**settings)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_part_lists_are_tuples_in_the_assignment_spelling_and_quick_caps_the_trials():
    config = catcar_mlp.Config.from_argv(["--part", "E,a", "--two-layer", "16,8", "--quick"])
    assert config.part == ("e", "a") and config.two_layer == (16, 8)
    assert catcar_mlp.Config().part == catcar_mlp.PARTS
    assert (config.train_epochs, config.trial_epochs) == (2, 2)
    assert catcar_mlp.Config(sweep_epochs=4).trial_epochs == 4
    assert catcar_mlp.Config().search_space == catcar_mlp.DEFAULT_SWEEP


def test_cli_exit_code_and_message_without_traceback(tmp_path, capsys):
    code = run_main(catcar_mlp.main, ["--data-dir", str(tmp_path / "none"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in err
