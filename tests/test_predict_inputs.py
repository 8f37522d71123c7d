"""`apps.predict` on the inputs users have, and every export kind served by TFLite like the SavedModel.

Users draw letters dark on light, at any size and anywhere in the picture; the models were trained on
light-on-dark glyphs framed one way (MNIST: 20x20 box centred by mass; notMNIST: stretched to fill 28x28).
The preprocessing checks compare what `tfnets.experiment.images.prepare` makes of such images with the canonical 28x28
image, written out independently here; the prediction checks run the CLI with small models trained at module
scope on real data (a softmax regression, seconds) and require the canonical image's class.
"""

import csv
import io
import json

import keras
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from apps import predict
from tfnets.experiment.cli import run_main
from tfnets.experiment.export import ServedModel, export_model
from tfnets.experiment.images import InputSpec, border_polarity, prepare, resize_padded

LETTERS = "ABCDEFGHIJ"
MNIST_SPEC = InputSpec(28, 28, 1, background="dark", framing="mnist")
NOTMNIST_SPEC = InputSpec(28, 28, 1, background="dark", framing="fill")


def correlation(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def only(candidates_and_notes):
    candidates, _ = candidates_and_notes
    assert len(candidates) == 1
    return candidates[0][..., 0]


# ---------------------------------------------------------------------------------------------------------
# Test images
# ---------------------------------------------------------------------------------------------------------


def render_letter(letter, size, canvas, offset=(0, 0), dark_on_light=False):
    """A letter in Pillow's built-in scalable font, `size` pixels high, centred at the canvas centre + offset."""
    image = Image.new("L", canvas, 255 if dark_on_light else 0)
    ImageDraw.Draw(image).text(
        (canvas[0] / 2 + offset[0], canvas[1] / 2 + offset[1]),
        letter,
        fill=0 if dark_on_light else 255,
        font=ImageFont.load_default(size=size),
        anchor="mm",
    )
    return np.asarray(image)


def canonical_letter(letter):
    """notMNIST framing: the glyph's bounding box stretched to fill 28x28, light on dark."""
    big = render_letter(letter, 200, (300, 300))
    ys, xs = np.nonzero(big)
    crop = Image.fromarray(big[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    return np.asarray(crop.resize((28, 28), Image.Resampling.LANCZOS), np.float32)


LETTER_VARIANTS = {  # (glyph size, canvas (w, h), offset of the centre, dark on light)
    "dark_64": (44, (64, 64), (0, 0), True),
    "light_off_centre": (30, (100, 60), (-25, 6), False),
    "dark_tall_canvas": (60, (90, 130), (12, -30), True),
    "dark_small": (22, (40, 40), (3, -2), True),
}


def pasted_digit(digit, scale, canvas, at, dark_on_light=False):
    """An MNIST digit's ink, enlarged `scale` times, pasted with its top-left at `at` into a (h, w) canvas."""
    ys, xs = np.nonzero(digit)
    ink = Image.fromarray(digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    ink = np.asarray(ink.resize((ink.width * scale, ink.height * scale), Image.Resampling.LANCZOS))
    out = np.zeros(canvas, np.uint8)
    out[at[0] : at[0] + ink.shape[0], at[1] : at[1] + ink.shape[1]] = ink
    return 255 - out if dark_on_light else out


DIGIT_VARIANTS = {  # (scale, canvas (h, w), top-left, dark on light)
    "top_left_x2": (2, (80, 60), (2, 3), False),
    "bottom_right_x3_dark": (3, (100, 110), (35, 45), True),
    "wide_canvas_x1": (1, (40, 90), (10, 60), False),
}


# ---------------------------------------------------------------------------------------------------------
# Preprocessing, model-free
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("letter", ["A", "C", "G", "J"])
@pytest.mark.parametrize("variant", sorted(LETTER_VARIANTS))
def test_letters_drawn_any_way_are_framed_like_notmnist(letter, variant):
    size, canvas, offset, dark = LETTER_VARIANTS[variant]
    pixels = render_letter(letter, size, canvas, offset, dark)
    framed = only(prepare(pixels, NOTMNIST_SPEC))
    canonical = canonical_letter(letter)
    assert framed.shape == (28, 28)
    assert correlation(framed, canonical) > 0.85
    # Without polarity and framing (plain padded resize) the same image is far from the canonical one.
    plain = resize_padded(pixels[..., None].astype(np.float32), 28, 28)[..., 0]
    assert correlation(plain, canonical) < correlation(framed, canonical) - 0.1


@pytest.fixture(scope="module")
def mnist(data_dir):
    with np.load(data_dir / "mnist.npz") as f:
        return f["x_train"][:20000], f["y_train"][:20000], f["x_test"][:200], f["y_test"][:200]


@pytest.mark.parametrize("variant", sorted(DIGIT_VARIANTS))
def test_mnist_digits_pasted_off_centre_are_reframed_like_mnist(mnist, variant):
    scale, canvas, at, dark = DIGIT_VARIANTS[variant]
    for digit in mnist[2][:10]:
        framed = only(prepare(pasted_digit(digit, scale, canvas, at, dark), MNIST_SPEC))
        # Re-framing is a resampling of the resampled original: close, not equal (the bounding box of the
        # canonical digit's anti-aliased ink is not the original 20x20 box).
        assert correlation(framed, digit) > 0.8
        assert abs(framed.sum() / digit.sum() - 1) < 0.35
        plain = resize_padded(pasted_digit(digit, scale, canvas, at)[..., None].astype(np.float32), 28, 28)
        assert correlation(plain[..., 0], digit) < correlation(framed, digit) - 0.2  # a plain resize


def test_polarity_comes_from_a_clear_border_and_stays_open_otherwise():
    blank = np.zeros((20, 20, 1), np.float32)
    assert border_polarity(blank) == "dark" and border_polarity(blank + 255) == "light"
    half = blank.copy()
    half[:, 10:] = 255  # a glyph touching the border on one side: no verdict
    assert border_polarity(half) is None
    candidates, _ = prepare(half[..., 0], InputSpec(20, 20, 1, "dark", "fill"))
    assert len(candidates) == 2 and np.array_equal(candidates[1], 255 - candidates[0])
    for invert, expected in (("no", 1), ("yes", 1)):
        candidates, _ = prepare(half[..., 0], InputSpec(20, 20, 1, "dark", "fill", invert=invert))
        assert len(candidates) == expected
    assert prepare(blank + 255, InputSpec(20, 20, 1, "dark", "fill", invert="no"))[0][0].min() == 255
    # Photos (no recorded background) are never inverted.
    assert prepare(blank + 255, InputSpec(20, 20, 1, None, None))[0][0].min() == 255


def test_photo_resize_keeps_aspect_ratio_and_pads_with_the_background():
    image = np.zeros((40, 80, 3), np.float32)
    image[...] = (0, 0, 200)  # blue background
    image[5:35, 25:55] = (220, 0, 0)  # a red square, centred
    out, notes = prepare(image, InputSpec(32, 32, 3))
    out = out[0]
    assert out.shape == (32, 32, 3) and notes == [("resized", "80x40")]
    np.testing.assert_allclose(out[:6].reshape(-1, 3).mean(0), (0, 0, 200), atol=2)  # padding, not stretching
    centre = out[12:20, 12:20].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(centre, (220, 0, 0), atol=3)
    assert int((out[16, :, 0] > 110).sum()) == 12  # the square is 30/80 of the width: 12 of 32 pixels


def test_no_resize_refuses_another_size():
    from tfnets.errors import ModelError

    with pytest.raises(ModelError, match=r"is 64x40 pixels; the model expects 28x28"):
        prepare(np.zeros((40, 64)), InputSpec(28, 28, 1, "dark", "fill", resize=False))


# ---------------------------------------------------------------------------------------------------------
# Real exports: softmax regressions trained at module scope, exported as both image kinds
# ---------------------------------------------------------------------------------------------------------


def _train_and_export(x, y, folder, image_style):
    """Exports of one trained softmax regression: `cnn` takes (28, 28, 1), `mlp` flat 784 (image_shape)."""
    keras.utils.set_random_seed(0)
    flat = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])
    flat.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    flat.fit(x.reshape(len(x), -1).astype("float32") / 255, y, epochs=3, batch_size=256, verbose=0)
    shaped = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    shaped.set_weights(flat.get_weights())
    names = LETTERS if image_style == "notmnist" else [str(d) for d in range(10)]
    return {
        "cnn": export_model(
            shaped, folder / "cnn", class_names=names, input_shape=[28, 28, 1], image_style=image_style
        ),
        "mlp": export_model(
            flat, folder / "mlp", class_names=names, input_shape=[784], image_shape=[28, 28, 1], image_style=image_style
        ),
    }


@pytest.fixture(scope="module")
def mnist_exports(mnist, tmp_path_factory):
    return _train_and_export(mnist[0], mnist[1], tmp_path_factory.mktemp("mnist"), "mnist")


@pytest.fixture(scope="module")
def notmnist_exports(data_dir, tmp_path_factory):
    from tfnets.data import load_notmnist

    data = load_notmnist(data_dir)
    return _train_and_export(
        np.round(data.x_train * 255), data.y_train, tmp_path_factory.mktemp("notmnist"), "notmnist"
    )


def _classes(model_dir, folder):
    """{file name: top-1 class} from the CLI's json output for a folder."""
    predict.main([str(model_dir), str(folder), "--format", "json", "--top-k", "1", "--out", str(folder / "p.json")])
    document = json.loads((folder / "p.json").read_text())
    return {p["file"].rsplit("/", 1)[-1]: p["top_k"][0]["class"] for p in document["predictions"]}


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_off_centre_and_inverted_digits_get_the_canonical_class(mnist, mnist_exports, kind, tmp_path):
    digits, labels = mnist[2][:40], mnist[3][:40]
    served = ServedModel(mnist_exports[kind])
    p = served.predict_proba(served.prepare_images(digits))
    confident = [i for i in range(len(digits)) if p[i].max() > 0.9 and p[i].argmax() == labels[i]][:6]
    assert len(confident) >= 4
    for i in confident:
        Image.fromarray(digits[i]).save(tmp_path / f"{i}_canonical.png")
        for name, (scale, canvas, at, dark) in DIGIT_VARIANTS.items():
            Image.fromarray(pasted_digit(digits[i], scale, canvas, at, dark)).save(tmp_path / f"{i}_{name}.png")
    classes = _classes(mnist_exports[kind], tmp_path)
    for i in confident:
        assert classes[f"{i}_canonical.png"] == str(labels[i])
        for name in DIGIT_VARIANTS:
            assert classes[f"{i}_{name}.png"] == str(labels[i]), (i, name)


# A sans-serif "I" is a bar that fills its bounding box: framed, it is a uniform block whose polarity no
# border can tell (notMNIST has such blocks too), so it has no canonical image to compare with.
SHAPED_LETTERS = LETTERS.replace("I", "")


@pytest.mark.parametrize("kind", ["cnn", "mlp"])
def test_letters_drawn_any_way_get_the_canonical_class(notmnist_exports, kind, tmp_path):
    for letter in SHAPED_LETTERS:
        Image.fromarray(canonical_letter(letter).round().astype(np.uint8)).save(tmp_path / f"{letter}_canonical.png")
        for name, (size, canvas, offset, dark) in LETTER_VARIANTS.items():
            Image.fromarray(render_letter(letter, size, canvas, offset, dark)).save(tmp_path / f"{letter}_{name}.png")
    classes = _classes(notmnist_exports[kind], tmp_path)
    # The font is not one of notMNIST's, so the regression's class for a canonical letter may be wrong; a
    # framed variant must still land where the canonical image does, and most canonical letters are right.
    assert sum(classes[f"{letter}_canonical.png"] == letter for letter in SHAPED_LETTERS) >= 7
    mismatches = [
        (letter, name)
        for letter in SHAPED_LETTERS
        for name in LETTER_VARIANTS
        if classes[f"{letter}_{name}.png"] != classes[f"{letter}_canonical.png"]
    ]
    assert len(mismatches) <= 2, mismatches


# ---------------------------------------------------------------------------------------------------------
# Many inputs, outputs for scripts, bad inputs
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def digit_folder(mnist, tmp_path):
    """digits/ with two PNGs at the top, one in a subfolder, a broken PNG and a text file (not an image)."""
    folder = tmp_path / "digits"
    (folder / "more").mkdir(parents=True)
    for i, path in enumerate([folder / "b.png", folder / "a.png", folder / "more" / "c.png"]):
        Image.fromarray(mnist[2][i]).save(path)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "readme.txt").write_text("not an image")
    return folder


def test_folder_is_classified_sorted_and_a_broken_file_is_one_line(mnist_exports, digit_folder, capsys):
    code = run_main(predict.main, [str(mnist_exports["cnn"]), str(digit_folder), "--top-k", "2"])
    captured = capsys.readouterr()
    assert code != 0
    assert [line.split(":")[0] for line in captured.out.splitlines()] == ["a.png", "b.png", "more/c.png"]
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "broken.png is not a readable image" in errors[0]
    assert errors[1] == "error: 1 of 4 inputs could not be classified (see above); the other 3 were"
    assert "Traceback" not in captured.err


def test_json_and_csv_outputs_parse(mnist, mnist_exports, digit_folder, capsys):
    (digit_folder / "broken.png").unlink()
    expected = ServedModel(mnist_exports["mlp"])
    ordered = [mnist[2][1], mnist[2][0], mnist[2][2]]  # a.png, b.png, more/c.png
    probabilities = expected.predict_proba(expected.prepare_images(np.stack(ordered)))
    predict.main([str(mnist_exports["mlp"]), str(digit_folder), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert [p["file"] for p in document["predictions"]] == [
        str(digit_folder / n) for n in ("a.png", "b.png", "more/c.png")
    ]
    for row, p in zip(document["predictions"], probabilities):
        assert len(row["top_k"]) == 3
        assert row["top_k"][0] == {"class": str(p.argmax()), "probability": pytest.approx(p.max(), rel=1e-5)}
    assert document["errors"] == []
    out = digit_folder.parent / "p.csv"
    predict.main(
        [str(mnist_exports["mlp"]), str(digit_folder / "*.png"), "--format", "csv", "--top-k", "2", "--out", str(out)]
    )
    assert capsys.readouterr().out == ""
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert list(rows[0]) == ["file", "class_1", "probability_1", "class_2", "probability_2", "status"]
    assert [r["file"] for r in rows] == [str(digit_folder / "a.png"), str(digit_folder / "b.png")]
    assert rows[0]["class_1"] == str(probabilities[0].argmax())
    assert float(rows[0]["probability_1"]) >= float(rows[0]["probability_2"])


def test_stdin_list_of_paths(mnist_exports, digit_folder, capsys):
    listing = f"{digit_folder / 'more' / 'c.png'}\n\n{digit_folder / 'a.png'}\n"
    probabilities = predict.main([str(mnist_exports["cnn"]), "-"], stdin=io.StringIO(listing))
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == ["c.png", "a.png"]
    assert probabilities.shape == (2, 10)


def test_one_model_call_per_batch(mnist_exports, digit_folder, monkeypatch, capsys):
    (digit_folder / "broken.png").unlink()
    calls = []
    original = ServedModel.logits
    monkeypatch.setattr(ServedModel, "logits", lambda self, x: calls.append(len(x)) or original(self, x))
    predict.main([str(mnist_exports["cnn"]), str(digit_folder), str(digit_folder), "--batch-size", "4"])
    assert calls == [4, 2]


@pytest.mark.parametrize(
    "inputs, message",
    [
        (["nothing_here/*.png"], "error: no file matches nothing_here/*.png"),
        (["missing.png"], "error: input file missing.png does not exist"),
        (["empty_folder"], "error: empty_folder is a folder with no image files"),
    ],
)
def test_bad_inputs_are_one_line_each(mnist_exports, tmp_path, monkeypatch, capsys, inputs, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty_folder").mkdir()
    assert run_main(predict.main, [str(mnist_exports["cnn"]), *inputs]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == message


def test_progress_bar_only_on_a_terminal():
    class Stream(io.StringIO):
        def __init__(self, tty):
            super().__init__()
            self.tty = tty

        def isatty(self):
            return self.tty

    for tty, total, drawn in ((True, 1000, True), (False, 1000, False), (True, 10, False)):
        stream = Stream(tty)
        progress = predict.Progress(total, stream)
        progress.update(total)
        progress.close()
        assert (f"{total}/{total}" in stream.getvalue()) == drawn


# ---------------------------------------------------------------------------------------------------------
# Serving: every export kind converts to TFLite and ranks like the SavedModel
# ---------------------------------------------------------------------------------------------------------


def _export_kind(kind, path):
    """An untrained model of each app's export kind, exported as that app does (raw pixels in)."""
    from tfnets.nn.preprocessing import ZCA

    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    if kind == "mnist_cnn":
        from apps.mnist_cnn import build_classifier

        return export_model(
            build_classifier(0.1, filters=(4, 4, 8, 8)),
            path,
            class_names=list("0123456789"),
            input_shape=[28, 28, 1],
            image_style="mnist",
        )
    if kind == "notmnist_mlp":
        from apps.notmnist_mlp import build_model

        return export_model(
            build_model(hidden_units=32),
            path,
            class_names=list(LETTERS),
            input_shape=[784],
            image_shape=[28, 28, 1],
            image_style="notmnist",
        )
    if kind == "catcar_mlp":
        from apps.catcar_mlp import Setting, build_model

        zca = ZCA(rng.uniform(0, 1, 1024), np.eye(1024) + rng.normal(0, 0.01, (1024, 1024)), 0.5)
        net = build_model(Setting(hidden=(16,), learning_rate=0.1, batch_size=38, init_std=0.05))
        served = keras.Sequential([keras.Input((1024,)), zca.layer(), net])
        return export_model(
            served,
            path,
            class_names=["cat", "car"],
            input_shape=[1024],
            image_shape=[32, 32, 1],
            output="tanh",
            pixel_scale=1 / 255,
            mean_image=rng.uniform(0, 0.1, 1024),
            image_style="photo",
        )
    from apps.cifar_fc_net import build_model

    zca = ZCA(rng.uniform(0, 255, 3072), (np.eye(3072) + rng.normal(0, 0.002, (3072, 3072))) / 64, 1.0)
    served = keras.Sequential([keras.Input((32, 32, 3)), zca.layer(), build_model(hidden="32-16", epochs=1)])
    return export_model(
        served,
        path,
        class_names=[f"c{i}" for i in range(10)],
        input_shape=[32, 32, 3],
        image_shape=[32, 32, 3],
        pixel_scale=1.0,
        image_style="photo",
    )


@pytest.mark.parametrize("kind", ["mnist_cnn", "notmnist_mlp", "catcar_mlp", "cifar_fc_net"])
def test_tflite_conversion_ranks_like_the_savedmodel(kind, tmp_path):
    import tensorflow as tf

    path = _export_kind(kind, tmp_path / kind)
    served = ServedModel(path)
    pixels = np.random.default_rng(1).integers(0, 256, size=(5, *served.pixel_shape)).astype(np.float32)
    pixels[:, 4:-4, 4:-4] = 255 - pixels[:, 4:-4, 4:-4]  # some structure, not only noise
    expected = served.predict_proba(served.prepare_images(pixels))

    converter = tf.lite.TFLiteConverter.from_saved_model(str(path / "serving"))
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    runner = interpreter.get_signature_runner("serving_default")
    outputs = np.concatenate([runner(pixels=pixels[i : i + 1])["output_0"] for i in range(len(pixels))])
    served_raw = served._serve(pixels=tf.constant(pixels))["output_0"].numpy()
    np.testing.assert_allclose(outputs, served_raw, rtol=1e-3, atol=1e-4)
    if served.metadata["output"] == "tanh":
        assert np.array_equal(outputs[:, 0] > 0, expected.argmax(1) == 1)
    else:
        assert np.array_equal(outputs.argmax(1), expected.argmax(1))
