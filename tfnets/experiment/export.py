"""Exporting a trained model and loading it back for inference, without the project's code.

`saved_models/<app>/` holds:
* `serving/`      a TF SavedModel (`tf.saved_model.load(...).signatures["serving_default"]`, output `output_0`);
* `model.keras`   the Keras model (reload with `tfnets.load_model(export_dir)`);
* `metadata.json` what a client needs to prepare inputs and read outputs (see `export_model`).
The folder is built under a temporary name and renamed into place, so a crash never leaves half a model.

An image model's SavedModel takes raw pixels: its `serving_default` signature has one input, `pixels`,
float32 `(N, H, W, C)` in 0..255, and does the scaling, mean subtraction, whitening and flattening the model was
trained with itself, so TF Serving, TFLite and `apps.predict` all feed it what an image file holds. What a
graph cannot decide for itself (the training images' polarity and framing, see `tfnets.experiment.images`) is recorded in
the metadata for the client. `docs/serving.md` shows the request.

Given validation data, the export also fits one softmax temperature on them (`tfnets.nn.calibration`) and records
it in the metadata (`temperature`, with the NLL and expected calibration error before and after in
`calibration`); `ServedModel.predict_proba` divides the logits by it unless asked for the raw probabilities.
"""

import json
from pathlib import Path

import numpy as np

from tfnets import atomic
from tfnets.errors import ModelError
from tfnets.experiment import locks
from tfnets.experiment.images import IMAGE_STYLES

OUTPUT_KINDS = ("logits", "probabilities", "tanh")


def export_model(
    model,
    export_dir,
    *,
    class_names,
    input_shape,
    image_shape=None,
    output="logits",
    pixel_scale=1 / 255.0,
    mean_image=None,
    image_style=None,
    extra=None,
    validation=None,
    test=None,
    calibration_model=None,
):
    """Write `model` to `export_dir` atomically; returns the path.

    `input_shape` is the per-example shape the model takes (e.g. `[28, 28, 1]` or `[784]`); `image_shape`
    the (H, W, C) of the images it was trained on when that differs (a flattened MLP). The model was trained
    on `pixel * pixel_scale - mean_image` (`mean_image` optional, shaped like one example); for an image model
    (`image_shape`, or a 2-D/3-D `input_shape`) the SavedModel applies that itself and takes raw pixels.
    `image_style` names the training images' conventions in `tfnets.experiment.images.IMAGE_STYLES` (`"mnist"`,
    `"notmnist"`, `"photo"`): recorded as `background` and `framing` (null when not given). `output` says how
    to turn outputs into class probabilities: softmax of `logits`, `probabilities` as-is, or a single `tanh`
    unit whose sign picks class 1 (>0) or 0.

    `validation` and `test`, `(x, y)` pairs (y: class indices, or +-1 targets for `tanh`), calibrate the export:
    a temperature fitted on `validation` is stored as `metadata["temperature"]` and the NLL/ECE before and
    after on both splits as `metadata["calibration"]` (see `calibrate`); without `validation` both are null.
    The outputs come from `calibration_model` (default `model`) applied to `x`: an app whose export wraps its
    trained net in preprocessing layers passes the net and the inputs the net takes.
    """
    if output not in OUTPUT_KINDS:
        raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {output!r}")
    if image_style is not None and image_style not in IMAGE_STYLES:
        raise ValueError(f"image_style must be one of {sorted(IMAGE_STYLES)}, got {image_style!r}")
    export_dir = Path(export_dir)
    pixel_shape = [int(d) for d in (image_shape if image_shape is not None else input_shape)]
    takes_pixels = len(pixel_shape) in (2, 3)
    style = IMAGE_STYLES[image_style] if image_style else {"background": None, "framing": None}
    calibration = None
    if validation is not None:
        calibration = calibrate(calibration_model or model, output, validation, test)
    metadata = {
        "class_names": [str(c) for c in class_names],
        "input_shape": [int(d) for d in input_shape],
        "image_shape": [int(d) for d in image_shape] if image_shape is not None else None,
        "output": output,
        "pixel_scale": float(pixel_scale),
        "mean_image": None,
        **style,
        "serving_input": (
            {"name": "pixels", "shape": [None, *pixel_shape], "dtype": "float32", "values": "raw pixels 0..255"}
            if takes_pixels
            else None
        ),
        "temperature": calibration["temperature"] if calibration else None,
        "calibration": calibration,
        **(extra or {}),
    }
    # One writer at a time: two commands exporting to the same folder would each swap in their own model.
    lock = export_dir.parent / f".{export_dir.name}.lock"
    locks.acquire(lock, f"export folder {export_dir} is being written by", "wait for it or pass --export-dir")
    try:
        with atomic.atomic_directory(export_dir) as tmp:
            if takes_pixels:
                _export_pixel_serving(model, tmp / "serving", input_shape, pixel_shape, pixel_scale, mean_image)
            else:
                model.export(str(tmp / "serving"), format="tf_saved_model", verbose=False)
            model.save(str(tmp / "model.keras"))
            if mean_image is not None:
                np.save(tmp / "mean_image.npy", np.asarray(mean_image, np.float32))
                metadata["mean_image"] = "mean_image.npy"
            atomic.write_json(tmp / "metadata.json", metadata)
    finally:
        locks.release(lock)
    return export_dir


def _export_pixel_serving(model, path, input_shape, pixel_shape, pixel_scale, mean_image):
    """A SavedModel whose `serving_default(pixels)` is `model(reshape(pixels * pixel_scale - mean_image))`."""
    import keras
    import tensorflow as tf

    scale = tf.constant(float(pixel_scale), tf.float32)
    mean = None if mean_image is None else tf.constant(np.asarray(mean_image, np.float32).reshape(pixel_shape))
    model_shape = [-1, *(int(d) for d in input_shape)]

    def serve(pixels):
        x = pixels * scale
        if mean is not None:
            x = x - mean
        return model(tf.reshape(x, model_shape), training=False)

    archive = keras.export.ExportArchive()
    archive.track(model)
    # The first endpoint is also written as `serving_default`, the signature TF Serving and TFLite use.
    archive.add_endpoint(
        "serve", serve, input_signature=[tf.TensorSpec([None, *pixel_shape], tf.float32, name="pixels")]
    )
    archive.write_out(str(path), verbose=False)


def model_outputs(model, x, batch_size=1024):
    """`model(x, training=False)` in batches -> float64 NumPy (N, ...). Direct calls rather than `predict`: plain
    local computation, the same under any distribution strategy and on every worker."""
    import keras

    return np.concatenate(
        [
            np.asarray(keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False)), np.float64)
            for i in range(0, len(x), batch_size)
        ]
    )


def class_indices(y, output):
    """Labels as class indices (N,): +-1 (or 0/1) targets of a `tanh` unit -> 1 where positive; one-hot -> argmax."""
    y = np.asarray(y)
    if output == "tanh":
        return (y.reshape(-1) > 0).astype(np.int64)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    return y.reshape(-1).astype(np.int64)


def calibrate(model, output, validation, test=None):
    """Fit the softmax temperature of `model`'s outputs on `validation` `(x, y)`; the summary of
    `tfnets.nn.calibration.calibration_summary` (with the test split's NLL/ECE when `test` is given)."""
    from tfnets.nn.calibration import as_logits, calibration_summary

    def logits_and_labels(pair):
        x, y = pair
        return as_logits(model_outputs(model, x), output), class_indices(y, output)

    valid = logits_and_labels(validation)
    tested = logits_and_labels(test) if test is not None else (None, None)
    return calibration_summary(*valid, *tested)


def describe_calibration(summary):
    """One line for the console: the temperature and the test (else validation) ECE before -> after."""
    split = "test" if "test_ece_before" in summary else "valid"
    return (
        f"temperature {summary['temperature']:.3f} (fitted on {summary['valid_examples']:,} validation examples); "
        f"{split} ECE ({summary['ece_bins']} bins) {summary[f'{split}_ece_before']:.4f} -> "
        f"{summary[f'{split}_ece_after']:.4f}, {split} NLL {summary[f'{split}_nll_before']:.4f} -> "
        f"{summary[f'{split}_nll_after']:.4f}"
    )


def calibration_rows(summary):
    """The report's table: one row per split, NLL and ECE before (T = 1) and after calibration."""
    return [
        {
            "split": split,
            "examples": summary[f"{split}_examples"],
            "NLL before": summary[f"{split}_nll_before"],
            "NLL after": summary[f"{split}_nll_after"],
            f"ECE ({summary['ece_bins']} bins) before": summary[f"{split}_ece_before"],
            f"ECE ({summary['ece_bins']} bins) after": summary[f"{split}_ece_after"],
        }
        for split in ("valid", "test")
        if f"{split}_ece_before" in summary
    ]


class ServedModel:
    """An exported model loaded with plain TensorFlow: `predict_proba(prepare_images(pixels)) -> (N, classes)`.

    Reads exports of both kinds: image models that take raw pixels (`metadata["serving_input"]`) and older
    exports (or non-image models) whose SavedModel takes the preprocessed inputs.
    """

    def __init__(self, export_dir):
        import tensorflow as tf

        self.path = Path(export_dir)
        if not self.path.is_dir():
            raise ModelError(f"model folder {self.path} does not exist; train the app first (it exports there)")
        meta_path = self.path / "metadata.json"
        if not meta_path.is_file() or not (self.path / "serving" / "saved_model.pb").is_file():
            raise ModelError(f"{self.path} is not an exported tfnets model (needs metadata.json and serving/)")
        try:
            self.metadata = json.loads(meta_path.read_text())
            loaded = tf.saved_model.load(str(self.path / "serving"))
        except Exception as err:  # noqa: BLE001 - any unreadable export is the same user problem
            raise ModelError(f"cannot load the model in {self.path}: {type(err).__name__}") from err
        self._loaded = loaded  # keep the trackable alive
        self._serve = loaded.signatures["serving_default"]
        self._input_key, spec = next(iter(self._serve.structured_input_signature[1].items()))
        self._input_dtype = spec.dtype  # float32 pixels, or int32 word ids (trigram)
        self.input_shape = tuple(self.metadata["input_shape"])
        self.class_names = self.metadata["class_names"]
        self.pixel_shape = tuple(self.metadata.get("image_shape") or self.input_shape)
        serving_input = self.metadata.get("serving_input")
        self.takes_pixels = bool(serving_input)
        self.serving_shape = tuple(serving_input["shape"][1:]) if serving_input else self.input_shape
        # The temperature fitted at export (null for an export without validation data, or an older one).
        self.temperature = self.metadata.get("temperature")
        mean_file = self.metadata.get("mean_image")
        self.mean_image = np.load(self.path / mean_file) if mean_file else None

    def prepare_images(self, images):
        """Raw pixel arrays (N, H, W[, C]) in 0..255 -> what the SavedModel takes: the pixels themselves,
        reshaped, for an export that preprocesses inside; else scaled, mean-subtracted and reshaped here."""
        if self.takes_pixels:
            return self.reshape(np.asarray(images, np.float32))
        x = np.asarray(images, np.float32) * self.metadata["pixel_scale"]
        if self.mean_image is not None:
            if self.mean_image.size != int(np.prod(x.shape[1:])):
                raise ModelError(
                    f"input has {int(np.prod(x.shape[1:]))} values per example; the model's mean "
                    f"image has {self.mean_image.size}"
                )
            x = x - self.mean_image.reshape(x.shape[1:])
        return self.reshape(x)

    def reshape(self, x):
        """(N, ...) -> (N, *serving_shape) float32, refusing a different number of values per example."""
        expected = int(np.prod(self.serving_shape))
        if int(np.prod(x.shape[1:])) != expected:
            raise ModelError(
                f"input has shape {tuple(x.shape[1:])} per example, but the model expects "
                f"{self.serving_shape} ({expected} values)"
            )
        return x.reshape((len(x),) + self.serving_shape).astype(np.float32)

    def logits(self, x):
        """One call of the SavedModel on the whole batch `x` (from `prepare_images`, or word ids) -> (N, classes)
        float64 logits, whatever the export's `output` kind (see `tfnets.nn.calibration.as_logits`)."""
        import tensorflow as tf

        from tfnets.nn.calibration import as_logits

        outputs = self._serve(**{self._input_key: tf.constant(x, self._input_dtype)})
        return as_logits(next(iter(outputs.values())).numpy(), self.metadata["output"])

    def probabilities(self, logits, raw=False):
        """Logits from `logits` -> (N, classes) probabilities: calibrated by the export's temperature, unless `raw`
        (or the export has none)."""
        from tfnets.nn.calibration import softmax

        return softmax(logits, 1.0 if raw or self.temperature is None else self.temperature)

    def predict_proba(self, x, raw=False):
        """`probabilities(logits(x), raw)`: one model call, calibrated probabilities unless `raw`."""
        return self.probabilities(self.logits(x), raw)
