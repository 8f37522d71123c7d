"""Export to saved_models/ and the inference CLI, which loads the SavedModel without project code."""

import json

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
