"""Classify images (or an array batch) with an exported model.

    python -m apps.predict saved_models/notmnist_cnn letter.png [more.png ...] [--top-k 3]
    python -m apps.predict saved_models/cifar_fc_net batch.npy

Loads the SavedModel with `tf.saved_model.load` only (no project model code) and prints the top-k classes with
their probabilities. Image files are converted to the model's channels (a colour image given to a greyscale
model is converted to greyscale by luminance, and a note says so); a different size is refused. `.npy`/`.npz`
arrays of integer dtype are raw pixels (scaled like images); float arrays must already be preprocessed.
"""
import sys
from pathlib import Path

import numpy as np

from tfnets.cli import ArgumentParser, exit_with, positive_int
from tfnets.errors import ModelError


def read_image(path, height, width, channels):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            converted = image.convert("L" if channels == 1 else "RGB")
    except FileNotFoundError:
        raise ModelError(f"input file {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ModelError(f"{path} is not a readable image ({type(err).__name__})") from None
    if converted.size != (width, height):
        raise ModelError(f"{path} is {converted.size[0]}x{converted.size[1]} pixels; the model expects "
                         f"{width}x{height}")
    if channels == 1 and mode not in ("L", "1", "I", "I;16", "LA", "P"):
        print(f"note: {path} is a colour image ({mode}); converted to greyscale for this greyscale model",
              file=sys.stderr)
    array = np.asarray(converted, np.float32)
    return array[..., None] if channels == 1 else array


def read_array(path):
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ModelError(f"input file {path} does not exist") from None
    except (ValueError, OSError) as err:
        raise ModelError(f"{path} is not a readable .npy/.npz array ({type(err).__name__})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if not loaded.files:
                raise ModelError(f"{path} holds no arrays")
            return loaded[loaded.files[0]]
    return loaded


def load_inputs(model, paths):
    """Returns (model-ready batch, labels for the printout)."""
    shape = model.input_shape
    image_shape = model.metadata.get("image_shape") or list(shape)
    batches, names = [], []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() in (".npy", ".npz"):
            array = read_array(path)
            per_example = int(np.prod(shape))
            if array.size == per_example:
                array = array.reshape((1, -1))
            if array.ndim < 2 or int(np.prod(array.shape[1:])) != per_example:
                raise ModelError(f"{path} has shape {array.shape}; expected (N, {', '.join(map(str, shape))}) "
                                 f"or one example of shape {tuple(shape)}")
            array = array.reshape((len(array), -1))
            x = model.prepare_images(array) if np.issubdtype(array.dtype, np.integer) else model.reshape(array)
            batches.append(x)
            names += [f"{path.name}[{i}]" for i in range(len(array))]
        else:
            if len(image_shape) not in (2, 3):
                raise ModelError(f"this model takes arrays of shape {tuple(shape)}, not images; pass a .npy file")
            height, width = image_shape[0], image_shape[1]
            channels = image_shape[2] if len(image_shape) == 3 else 1
            batches.append(model.prepare_images(read_image(path, height, width, channels)[None]))
            names.append(path.name)
    return np.concatenate(batches), names


def main(argv=None):
    parser = ArgumentParser(prog="python -m apps.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="an exported model folder, e.g. saved_models/notmnist_cnn")
    parser.add_argument("inputs", nargs="+", help="PNG/JPEG images, or .npy/.npz arrays")
    parser.add_argument("--top-k", type=positive_int, default=3)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)

    from tfnets.export import ServedModel

    model = ServedModel(args.model_dir)
    x, names = load_inputs(model, args.inputs)
    probabilities = model.predict_proba(x)
    k = min(args.top_k, probabilities.shape[1])
    for name, row in zip(names, probabilities):
        top = np.argsort(-row)[:k]
        ranked = ", ".join(f"{model.class_names[i]} ({row[i]:.3f})" for i in top)
        print(f"{name}: {ranked}")
    return probabilities


if __name__ == "__main__":
    exit_with(main)
