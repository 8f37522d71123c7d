"""apps.notmnist_cnn: the assignment's CNN, its L2 convention, dropout, studies, and export -> predict end to end."""

import csv
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont

from apps import notmnist_cnn, predict, results
from tfnets.experiment.cli import run_main


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 28, 28, 1)).astype("float32")


def test_architecture_follows_the_assignment():
    model = notmnist_cnn.build_model(seed=0)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv"] == (28, 28, 32)  # 3x3, 32 filters, stride 1, same padding
    assert shapes["pool"] == (14, 14, 32)  # 2x2 max-pool
    assert shapes["flatten"] == (14 * 14 * 32,)
    assert shapes["dense_784"] == (784,) and shapes["logits"] == (10,)
    order = [layer.name for layer in model.layers]
    assert order == [
        "conv",
        "conv_relu",
        "batch_norm",
        "pool",
        "flatten",
        "dense_784",
        "dropout",
        "dense_relu",
        "logits",
    ]
    assert model.count_params() == (9 * 32 + 32) + 4 * 32 + (6272 * 784 + 784) + (784 * 10 + 10)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-4)


def test_xavier_variance_on_the_dense_and_conv_kernels():
    model = notmnist_cnn.build_model(seed=1)
    dense = model.get_layer("dense_784").kernel.numpy()
    assert dense.std() == pytest.approx(np.sqrt(2 / (6272 + 784)), rel=0.01)
    conv = model.get_layer("conv").kernel.numpy()  # fans count the 3x3 receptive field
    assert conv.std() == pytest.approx(np.sqrt(2 / (9 * 1 + 9 * 32)), rel=0.1)


@pytest.mark.parametrize("lam", [0.01, 0.5])
def test_l2_penalty_is_the_assignments_lambda_times_l2_loss(lam):
    model = notmnist_cnn.build_model(l2=lam, seed=2)
    w1, w2 = model.get_layer("dense_784").kernel, model.get_layer("logits").kernel
    assignment = lam * (tf.nn.l2_loss(w1) + tf.nn.l2_loss(w2))  # l2_loss = sum(w**2) / 2
    model(_images(1))
    np.testing.assert_allclose(float(tf.add_n(model.losses)), float(assignment), rtol=1e-5)
    # ... and it is added to the MEAN cross-entropy of the batch, as in the assignment's total loss.
    x, y = _images(16, seed=3), np.arange(16) % 10
    values = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    mean_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model(x, training=False))
    np.testing.assert_allclose(values["loss"], float(mean_ce) + float(assignment), rtol=1e-5)
    np.testing.assert_allclose(values["cross_entropy"], float(mean_ce), rtol=1e-5)


def test_no_penalty_without_l2():
    model = notmnist_cnn.build_model(l2=0.0, seed=0)
    model(_images(1))
    assert not model.losses


def test_keep_prob_becomes_the_dropout_rate_and_only_acts_in_training():
    model = notmnist_cnn.build_model(keep_prob=0.75, seed=0)
    dropout = model.get_layer("dropout")
    assert dropout.rate == pytest.approx(0.25)
    ones = tf.ones((200, 784))
    dropped = dropout(ones, training=True).numpy()
    assert np.mean(dropped == 0) == pytest.approx(0.25, abs=0.02)
    assert np.unique(dropped[dropped != 0]) == pytest.approx([1 / 0.75])  # inverted dropout keeps the mean
    np.testing.assert_array_equal(dropout(ones, training=False).numpy(), ones.numpy())


def test_improved_recipe_is_the_same_network_at_inference_only_wider():
    improved = notmnist_cnn.build_model(seed=4, recipe="improved", epochs=3, steps_per_epoch=10)
    assert improved.get_layer("conv").filters == 2 * notmnist_cnn.build_model(seed=4).get_layer("conv").filters
    baseline = notmnist_cnn.build_model(seed=4, filters=improved.get_layer("conv").filters)
    assert [w.shape for w in baseline.trainable_weights] == [w.shape for w in improved.trainable_weights]
    improved.set_weights(baseline.get_weights())
    x = _images(4, seed=5)
    np.testing.assert_allclose(improved(x, training=False), baseline(x, training=False), rtol=1e-5, atol=1e-5)
    assert not np.allclose(improved.get_layer("shift")(x, training=True), x)  # augmentation acts in training
    schedule = keras.optimizers.schedules.deserialize(improved.optimizer.get_config()["learning_rate"])
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)  # decays to zero over 3 epochs x 10 steps
    assert float(schedule(0)) == pytest.approx(1e-4) and float(schedule(30)) == pytest.approx(0.0, abs=1e-9)


def test_recipe_sets_the_default_keep_prob_and_the_flag_overrides_it():
    seen = []
    for argv in ([], ["--recipe", "improved"], ["--recipe", "improved", "--keep-prob", "0.8"]):
        config = notmnist_cnn.Config.from_argv(argv)
        seen.append((config.dropout_keep_prob, config.identity()["keep_prob"]))
    assert seen == [(1.0, 1.0), (0.5, 0.5), (0.8, 0.8)]
    # The same from Python, and the flag left unset is recorded as given: a replayed configuration resolves it again.
    assert notmnist_cnn.Config(recipe="improved").dropout_keep_prob == 0.5
    assert notmnist_cnn.Config(recipe="improved").settings()["keep_prob"] is None


def render_letter(path, letter="B"):
    """A white letter on black, 28x28 greyscale, like a notMNIST glyph."""
    image = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=24)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        font = ImageFont.load_default()
    draw.text((14, 14), letter, fill=255, font=font, anchor="mm")
    image.save(path)
    return path


def _main(data_dir, tmp_path, *extra):
    return notmnist_cnn.main(
        [
            "--quick",
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / "runs"),
            "--export-dir",
            str(tmp_path / "saved" / "notmnist_cnn"),
            *extra,
        ]
    )


def test_quick_run_exports_a_model_that_predict_serves_end_to_end(data_dir, tmp_path, capsys):
    result = _main(data_dir, tmp_path)
    metrics = json.loads((result.run.path / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    assert {"test_accuracy", "test_loss", "test_cross_entropy", "valid_accuracy"} <= set(metrics["final"])
    report = (result.run.path / "report.md").read_text()
    assert "## Final metrics" in report and "## Learning curves" in report

    export_dir = tmp_path / "saved" / "notmnist_cnn"
    letter = render_letter(tmp_path / "letter.png")
    capsys.readouterr()
    probabilities = predict.main([str(export_dir), str(letter), "--top-k", "1"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("letter.png: ") and line.split(": ")[1][0] in "ABCDEFGHIJ"

    # The serving signature (plain TensorFlow, no project code) computes what the Keras model computes.
    pixels = np.asarray(Image.open(letter), np.float32)[None, :, :, None] / 255.0
    keras_model = keras.models.load_model(export_dir / "model.keras")
    served = tf.saved_model.load(str(export_dir / "serving")).signatures["serving_default"]
    served_logits = served(pixels=tf.constant(pixels * 255.0))["output_0"].numpy()  # it takes raw pixels
    keras_logits = keras_model(pixels, training=False).numpy()
    np.testing.assert_allclose(served_logits, keras_logits, rtol=1e-5, atol=1e-5)
    # predict reports the probabilities calibrated by the temperature the export fitted on the validation split.
    metadata = json.loads((export_dir / "metadata.json").read_text())
    z = keras_logits / metadata["temperature"]
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    assert metadata["class_names"] == list("ABCDEFGHIJ")
    assert "## Calibration of the export `notmnist_cnn`" in (result.run.path / "report.md").read_text()


def test_a_sweep_tabulates_baseline_and_trial_trains_each_at_its_own_rate_and_exports_the_best(
    data_dir, tmp_path, monkeypatch
):
    built = []
    original = notmnist_cnn.build_model

    def recording(*args, **kwargs):
        model = original(*args, **kwargs)
        built.append(float(model.optimizer.learning_rate.numpy()))
        return model

    monkeypatch.setattr(notmnist_cnn, "build_model", recording)
    result = _main(data_dir, tmp_path, "--sweep", "learning_rate=0.003", "--epochs", "1")
    # The baseline at the assignment's 1e-4, the trial at its own rate (then the best trial rebuilt for export).
    assert built[:2] == [pytest.approx(1e-4), pytest.approx(0.003)]
    run_dir = result.run.path
    with open(run_dir / "learning_rate_results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["setting"][:8] for row in rows] == ["baseline", "learning"]
    assert rows[1]["setting"] == "learning_rate=0.003" and rows[1]["status"] == "completed"
    assert rows[0]["train_loss"] != rows[1]["train_loss"]
    report = (run_dir / "report.md").read_text()
    assert "## learning_rate study\n" in report and "learning_rate_curves.png" in report
    trial = json.loads((run_dir / "trials" / "learning_rate=0.003" / "metrics.json").read_text())
    assert trial["epochs"] == 1 and "test_accuracy" in trial["final"]
    assert (tmp_path / "saved" / "notmnist_cnn_learning_rate" / "serving" / "saved_model.pb").exists()


@pytest.mark.slow
def test_study_all_adds_the_improved_row_with_its_own_width_and_dropout(data_dir, tmp_path, monkeypatch):
    # The improved row is what is under test (the studies' tables are tested through --sweep above): no study values.
    monkeypatch.setattr(notmnist_cnn, "STUDIES", {})
    # The part's folder renamed in the app alone: the results page still finds its number (it asks the app).
    monkeypatch.setattr(notmnist_cnn, "IMPROVED_PART", "improved_recipe")
    result = _main(data_dir, tmp_path, "--study", "all", "--epochs", "1")
    run_dir = result.run.path
    improved = run_dir / "improved_recipe"
    assert not (run_dir / "improved").exists()
    measure = next(m for m in results.PARTS if m.key == "notmnist_cnn").improved[1]
    assert measure.args == ("--study", "all")
    value, path = measure.read(run_dir, "notmnist_cnn")
    assert path == improved / "metrics.json"
    assert value == pytest.approx(100 * result.parts["improved"].final["test_accuracy"])
    config = json.loads((improved / "config.json").read_text())
    assert config["recipe"] == "improved" and config["keep_prob"] == 0.5 and config["filters"] == 64
    assert json.loads((improved / "metrics.json").read_text())["epochs"] == 1
    assert json.loads((run_dir / "config.json").read_text())["keep_prob"] == 1.0  # the baseline keeps p = 1
    report = (run_dir / "report.md").read_text()
    assert "## Go beyond: improved recipe (extra row)" in report and "64 conv filters, dropout p=0.5" in report
    assert (run_dir / "improved_curves.png").stat().st_size > 0
    served = tmp_path / "saved" / "notmnist_cnn_improved"
    assert (served / "serving" / "saved_model.pb").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--keep-prob", "0"], "--keep-prob must be in (0, 1]"),
        (["--keep-prob", "1.5"], "--keep-prob must be in (0, 1]"),
        (["--l2", "-0.1"], "--l2 must be >= 0"),
        (["--sweep", "width=1,2"], "unknown sweep parameter 'width'"),
        (["--sweep", "keep_prob=0.5,2"], "--sweep keep_prob values must be in (0, 1]"),
        (["--sweep", "keep_prob=0.3:2", "--tuner", "hyperband"], "--sweep keep_prob values must be in (0, 1]"),
        (["--sweep", "learning_rate=0,1e-3"], "--sweep learning_rate values must be > 0"),
        (["--study", "l2", "--sweep", "l2=0.1"], "either --study or --sweep"),
        (["--study", "momentum"], "invalid choice"),
        (["--epochs", "-3"], "expected a positive integer"),
    ],
)
def test_bad_flags_give_one_line_and_nonzero_exit(data_dir, tmp_path, capsys, flags, message):
    code = run_main(notmnist_cnn.main, ["--quick", "--data-dir", str(data_dir), "--out", str(tmp_path), *flags])
    err = capsys.readouterr().err.strip()
    assert code != 0 and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
