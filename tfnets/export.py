"""Exporting a trained model and loading it back for inference, without the project's code.

`saved_models/<app>/` holds:
* `serving/`      a TF SavedModel (`tf.saved_model.load(...).signatures["serving_default"]`, output `output_0`);
* `model.keras`   the Keras model (reload with `tfnets.load_model(export_dir)`);
* `metadata.json` what a client needs to prepare inputs and read outputs (see `export_model`).
The folder is built under a temporary name and renamed into place, so a crash never leaves half a model.
"""
import json
from pathlib import Path

import numpy as np

from tfnets import atomic, locks
from tfnets.errors import ModelError

OUTPUT_KINDS = ("logits", "probabilities", "tanh")


def export_model(model, export_dir, *, class_names, input_shape, image_shape=None, output="logits",
                 pixel_scale=1 / 255.0, mean_image=None, extra=None):
    """Write `model` to `export_dir` atomically; returns the path.

    `input_shape` is the per-example shape the model takes (e.g. `[28, 28, 1]` or `[784]`); `image_shape`
    the (H, W, C) of the images it was trained on when that differs (a flattened MLP); images given to
    `apps.predict` are converted to that many channels, scaled by `pixel_scale`, reduced by `mean_image`
    (if given) and reshaped. `output` says how to turn outputs into class probabilities: softmax of
    `logits`, `probabilities` as-is, or a single `tanh` unit whose sign picks class 1 (>0) or 0.
    """
    if output not in OUTPUT_KINDS:
        raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {output!r}")
    export_dir = Path(export_dir)
    metadata = {"class_names": [str(c) for c in class_names], "input_shape": [int(d) for d in input_shape],
                "image_shape": [int(d) for d in image_shape] if image_shape is not None else None,
                "output": output, "pixel_scale": float(pixel_scale), "mean_image": None, **(extra or {})}
    # One writer at a time: two commands exporting to the same folder would each swap in their own model.
    lock = export_dir.parent / f".{export_dir.name}.lock"
    locks.acquire(lock, f"export folder {export_dir} is being written by", "wait for it or pass --export-dir")
    try:
        with atomic.atomic_directory(export_dir) as tmp:
            model.export(str(tmp / "serving"), format="tf_saved_model", verbose=False)
            model.save(str(tmp / "model.keras"))
            if mean_image is not None:
                np.save(tmp / "mean_image.npy", np.asarray(mean_image, np.float32))
                metadata["mean_image"] = "mean_image.npy"
            atomic.write_json(tmp / "metadata.json", metadata)
    finally:
        locks.release(lock)
    return export_dir


class ServedModel:
    """An exported model loaded with plain TensorFlow: `predict_proba(batch) -> (N, num_classes)`."""

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
        self.input_shape = tuple(self.metadata["input_shape"])
        self.class_names = self.metadata["class_names"]
        mean_file = self.metadata.get("mean_image")
        self.mean_image = np.load(self.path / mean_file) if mean_file else None

    def prepare_images(self, images):
        """Raw pixel arrays (N, H, W[, C]) in 0..255 -> model inputs (scaled, mean-subtracted, reshaped)."""
        x = np.asarray(images, np.float32) * self.metadata["pixel_scale"]
        if self.mean_image is not None:
            if self.mean_image.size != int(np.prod(x.shape[1:])):
                raise ModelError(f"input has {int(np.prod(x.shape[1:]))} values per example; the model's mean "
                                 f"image has {self.mean_image.size}")
            x = x - self.mean_image.reshape(x.shape[1:])
        return self.reshape(x)

    def reshape(self, x):
        expected = int(np.prod(self.input_shape))
        if int(np.prod(x.shape[1:])) != expected:
            raise ModelError(f"input has shape {tuple(x.shape[1:])} per example, but the model expects "
                             f"{self.input_shape} ({expected} values)")
        return x.reshape((len(x),) + self.input_shape).astype(np.float32)

    def predict_proba(self, x):
        import tensorflow as tf

        outputs = self._serve(tf.constant(x, tf.float32))
        y = next(iter(outputs.values())).numpy()
        kind = self.metadata["output"]
        if kind == "logits":
            y = y - y.max(axis=1, keepdims=True)
            e = np.exp(y)
            return e / e.sum(axis=1, keepdims=True)
        if kind == "tanh":
            p1 = (np.clip(y.reshape(-1), -1, 1) + 1) / 2
            return np.stack([1 - p1, p1], axis=1)
        return y
