"""Training-time augmentation kept OUTSIDE the model that gets exported.

Keras 3.15 + TF 2.21 trap (checked with a two-layer script): a SavedModel exported from a model that contains a
random preprocessing layer (`RandomTranslation`, ...) serves the WHOLE graph in training mode, so batch-norm
layers normalise with the batch's own statistics (a single image comes out as nonsense) and the shifts stay on.
So apps build a plain `classifier`, train `with_random_shift(classifier, ...)`, and export the classifier,
which shares the trained weights.
"""


def with_random_shift(classifier, max_shift_px, name=None):
    """A model that randomly shifts its (N, H, W, C) input by up to `max_shift_px` pixels, then runs `classifier`.

    The shift is active only in training (`fit`); `evaluate`/`predict` see the images unchanged. Empty
    borders are filled with 0 (the background of MNIST-like images); `max_shift_px=0` adds no shift. Either
    way `exportable(model)` gives the classifier back.
    """
    import keras  # here, not at the top: apps import this module before parsing their arguments

    inputs = keras.Input(classifier.input_shape[1:], name="image")
    x = inputs
    if max_shift_px:
        height, width = classifier.input_shape[1:3]
        x = keras.layers.RandomTranslation(
            max_shift_px / height, max_shift_px / width, fill_mode="constant", fill_value=0.0, name="random_shift"
        )(x)
    model = keras.Model(inputs, classifier(x), name=name or f"{classifier.name}_trainer")
    model.classifier_name = classifier.name
    return model


def exportable(model):
    """The classifier inside a `with_random_shift` model (the model itself if it is not one)."""
    name = getattr(model, "classifier_name", None)
    return model.get_layer(name) if name else model
