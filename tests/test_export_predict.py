"""Export to saved_models/ and the inference CLI, which loads the SavedModel without project code."""

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from apps import predict
from tfnets.errors import ModelError
from tfnets.experiment.cli import run_main
from tfnets.experiment.export import ServedModel, export_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    path = tmp_path_factory.mktemp("export") / "tiny"
    export_model(model, path, class_names=["a", "b", "c"], input_shape=[8, 8, 1])
    return model, path


def _png(path, array, mode="L"):
    Image.fromarray(array.astype("uint8"), mode=mode).save(path)
    return path


def test_export_writes_complete_folder_and_served_outputs_match(exported):
    model, path = exported
    assert {p.name for p in path.iterdir()} == {"serving", "model.keras", "metadata.json"}
    x = np.random.default_rng(1).uniform(size=(4, 8, 8, 1)).astype("float32")
    logits = model.predict(x, verbose=0)
    served_model = ServedModel(path)
    served = served_model.predict_proba(served_model.prepare_images(x * 255))  # the export takes raw pixels
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(served, expected / expected.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_predict_cli_ranks_classes_for_png_and_npy(exported, tmp_path, capsys):
    model, path = exported
    pixels = np.random.default_rng(2).integers(0, 256, size=(8, 8))
    image = _png(tmp_path / "x.png", pixels)
    np.save(tmp_path / "batch.npy", np.stack([pixels, pixels]).astype("uint8"))
    probabilities = predict.main([str(path), str(image), str(tmp_path / "batch.npy"), "--top-k", "2"])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[0].startswith("x.png: ") and out[1].startswith("batch.npy[0]: ")
    expected = model.predict(pixels[None, :, :, None].astype("float32") / 255.0, verbose=0)
    assert np.argmax(probabilities[0]) == np.argmax(expected[0])
    np.testing.assert_allclose(probabilities[0], probabilities[1], rtol=1e-6)


def test_colour_image_is_converted_with_a_note(exported, tmp_path, capsys):
    _, path = exported
    rgb = _png(tmp_path / "rgb.png", np.full((8, 8, 3), 128), mode="RGB")
    predict.main([str(path), str(rgb)])
    assert "converted to greyscale" in capsys.readouterr().err


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_model", "does not exist"),
        ("wrong_size", "expects 8x8 (--no-resize)"),
        ("not_an_image", "not a readable image"),
        ("wrong_array", "expected (N, 8, 8, 1)"),
    ],
)
def test_bad_inputs_give_one_clear_error(exported, tmp_path, case, message):
    _, path = exported
    model_dir, inputs = str(path), []
    if case == "missing_model":
        model_dir, inputs = str(tmp_path / "nope"), [str(_png(tmp_path / "a.png", np.zeros((8, 8))))]
    elif case == "wrong_size":
        inputs = [str(_png(tmp_path / "big.png", np.zeros((9, 9)))), "--no-resize"]
    elif case == "not_an_image":
        (tmp_path / "fake.png").write_text("not a png")
        inputs = [str(tmp_path / "fake.png")]
    else:
        np.save(tmp_path / "bad.npy", np.zeros((2, 5)))
        inputs = [str(tmp_path / "bad.npy")]
    with pytest.raises(ModelError) as err:
        predict.main([model_dir, *inputs])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_predict_cli_exits_nonzero_without_traceback(tmp_path, capsys):
    code = run_main(predict.main, [str(tmp_path / "missing"), "x.png"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: model folder")
    assert "Traceback" not in err


def test_metadata_records_how_to_prepare_inputs(exported):
    _, path = exported
    metadata = json.loads((path / "metadata.json").read_text())
    assert metadata["input_shape"] == [8, 8, 1] and metadata["output"] == "logits"
    assert metadata["class_names"] == ["a", "b", "c"]


# ---------------------------------------------------------------------------------------------------------
# Calibration at export, and what predict reports: calibrated or raw probabilities, unsure, no glyph
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calibrated(exported, tmp_path_factory):
    """The tiny model exported as a notMNIST-style glyph model, calibrated on labels drawn from softmax(logits / 4):
    its logits are 4 times too confident for those labels. Returns (model, path, validation, test)."""
    model, _ = exported
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(1200, 8, 8, 1)).astype("float32")
    x[:, 2:6, 2:6] = rng.uniform(size=(1200, 1, 1, 1))  # a bright or dark square: a wider spread of logits
    logits = model.predict(x, verbose=0).astype(np.float64)
    labels = (_softmax(logits, 4.0).cumsum(1) > rng.uniform(size=(len(x), 1))).argmax(1)
    validation, test = (x[:800], labels[:800]), (x[800:], labels[800:])
    path = tmp_path_factory.mktemp("export") / "calibrated"
    export_model(
        model,
        path,
        class_names=["a", "b", "c"],
        input_shape=[8, 8, 1],
        image_style="notmnist",
        validation=validation,
        test=test,
    )
    return model, path, validation, test


def _softmax(logits, temperature=1.0):
    z = np.asarray(logits, np.float64) / temperature
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_export_fits_the_temperature_on_validation_and_records_it(exported, calibrated):
    from tfnets.nn.calibration import expected_calibration_error, fit_temperature

    model, path, (x, y), (x_test, y_test) = calibrated
    metadata = json.loads((path / "metadata.json").read_text())
    assert metadata["temperature"] == pytest.approx(fit_temperature(model.predict(x, verbose=0), y), rel=1e-6)
    assert metadata["temperature"] > 1.5  # the labels are far less certain than the logits
    calibration = metadata["calibration"]
    assert calibration["valid_examples"] == 800 and calibration["test_examples"] == 400
    assert calibration["ece_bins"] == 15 and calibration["temperature"] == metadata["temperature"]
    # The test split's numbers are those of the Keras model's own logits (the ECE drop itself is checked on
    # data with a known miscalibration in test_calibration.py; 400 examples of a tiny model are too noisy).
    test_logits = model.predict(x_test, verbose=0)
    for when, t in (("before", 1.0), ("after", metadata["temperature"])):
        ece = expected_calibration_error(_softmax(test_logits, t), y_test)
        assert calibration[f"test_ece_{when}"] == pytest.approx(ece, abs=1e-6)
    assert calibration["valid_nll_after"] < calibration["valid_nll_before"]  # T minimises it; T = 1 is "before"
    # An export without validation data says so: no temperature.
    plain = json.loads((exported[1] / "metadata.json").read_text())
    assert plain["temperature"] is None and plain["calibration"] is None


def _letter(size=8):
    """A bright square on a dark background (a glyph for a notMNIST-style model), at the model's size."""
    pixels = np.zeros((size, size))
    pixels[2:6, 3:5] = 255
    return pixels


def test_predict_reports_calibrated_probabilities_and_raw_ones_on_request(calibrated, tmp_path, capsys):
    model, path, _, _ = calibrated
    image = _png(tmp_path / "g.png", _letter())
    temperature = json.loads((path / "metadata.json").read_text())["temperature"]
    logits = model.predict(_letter()[None, :, :, None].astype("float32") / 255.0, verbose=0)
    shown = predict.main([str(path), str(image)])
    captured = capsys.readouterr()
    np.testing.assert_allclose(shown[0], _softmax(logits, temperature)[0], rtol=1e-4)
    assert f"calibrated by the temperature {temperature:.3f}" in captured.err
    top = _softmax(logits, temperature)[0].max()
    assert captured.out.startswith("g.png: ") and f"({top:.3f})" in captured.out
    raw = predict.main([str(path), str(image), "--raw"])
    np.testing.assert_allclose(raw[0], _softmax(logits)[0], rtol=1e-4)
    assert f"({_softmax(logits)[0].max():.3f})" in capsys.readouterr().out
    assert raw[0].max() > shown[0].max()  # T > 1: the calibrated top probability is lower
    assert raw[0].argmax() == shown[0].argmax()


def test_min_confidence_prints_unsure_below_it(calibrated, tmp_path, capsys):
    _, path, _, _ = calibrated
    image = _png(tmp_path / "g.png", _letter())
    top = predict.main([str(path), str(image)])[0].max()
    capsys.readouterr()
    for threshold, unsure in ((top - 0.01, False), (top + 0.01, True)):
        code = run_main(predict.main, [str(path), str(image), "--min-confidence", f"{threshold:.6f}"])
        captured = capsys.readouterr()
        assert code == 0
        assert captured.out.startswith("g.png: unsure: ") == unsure
        assert ("below --min-confidence" in captured.err) == unsure
    predict.main([str(path), str(image), "--min-confidence", f"{top + 0.01:.6f}", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert document["predictions"][0]["status"] == "unsure" and len(document["predictions"][0]["top_k"]) == 3
    assert document["min_confidence"] == pytest.approx(top + 0.01, abs=1e-6) and document["calibrated"] is True
    assert run_main(predict.main, [str(path), str(image), "--min-confidence", "1.5"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def _blank_inputs(folder):
    """The inputs a user uploads by mistake: each has no ink once made model-sized (8x8)."""
    _png(folder / "grey.png", np.full((8, 8), 128))
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(folder / "transparent.png")  # white once composited
    _png(folder / "pixel.png", np.zeros((1, 1)))
    noise = np.random.default_rng(4).integers(0, 256, size=(400, 600))  # averages to flat grey at 8x8
    _png(folder / "noise.png", noise)
    return ["grey.png", "noise.png", "pixel.png", "transparent.png"]


def test_images_without_a_glyph_get_no_class(calibrated, tmp_path, capsys):
    _, path, _, _ = calibrated
    folder = tmp_path / "uploads"
    folder.mkdir()
    blanks = _blank_inputs(folder)
    _png(folder / "letter.png", _letter())
    code = run_main(predict.main, [str(path), str(folder)])
    captured = capsys.readouterr()
    assert code == 2  # as for a file that could not be read
    lines = dict(line.split(": ", 1) for line in captured.out.splitlines())
    assert {name for name, text in lines.items() if text == "no glyph found"} == set(blanks)
    assert lines["letter.png"][0] in "abc"
    assert captured.err.strip().splitlines()[-1] == (
        "error: 4 of 5 inputs could not be classified (see above: no glyph found); the other 1 were"
    )
    assert "Traceback" not in captured.err

    # One blank file on its own: its line, then one error line naming it.
    assert run_main(predict.main, [str(path), str(folder / "grey.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "grey.png: no glyph found\n"
    assert captured.err.strip().splitlines()[-1].startswith(f"error: {folder / 'grey.png'}: no glyph found")


def test_no_glyph_is_null_in_json_and_csv(calibrated, tmp_path, capsys):
    _, path, _, _ = calibrated
    folder = tmp_path / "uploads"
    folder.mkdir()
    _blank_inputs(folder)
    _png(folder / "letter.png", _letter())
    assert run_main(predict.main, [str(path), str(folder), "--format", "json", "--out", str(tmp_path / "p.json")]) == 2
    document = json.loads((tmp_path / "p.json").read_text())
    by_file = {Path(p["file"]).name: p for p in document["predictions"]}
    assert by_file["grey.png"] == {"file": str(folder / "grey.png"), "status": "no glyph found", "top_k": None}
    assert by_file["letter.png"]["status"] == "ok" and len(by_file["letter.png"]["top_k"]) == 3
    assert document["errors"] == []
    assert run_main(predict.main, [str(path), str(folder), "--format", "csv", "--top-k", "1"]) == 2
    rows = {Path(r["file"]).name: r for r in csv.DictReader(capsys.readouterr().out.splitlines())}
    assert rows["pixel.png"] == {
        "file": str(folder / "pixel.png"),
        "class_1": "",
        "probability_1": "",
        "status": "no glyph found",
    }
    assert rows["letter.png"]["class_1"] in "abc" and rows["letter.png"]["status"] == "ok"


def test_photo_models_classify_uniform_images(exported, tmp_path, capsys):
    # No framing recorded (not a glyph model): a uniform image is a valid input and gets a class.
    _, path = exported
    assert run_main(predict.main, [str(path), str(_png(tmp_path / "grey.png", np.full((8, 8), 128)))]) == 0
    assert "no glyph" not in capsys.readouterr().out
