"""Weight initialisers the assignments specify."""


def xavier_normal(seed):
    """Xavier/Glorot as the notMNIST assignment defines it: zero-mean Gaussian, variance 2 / (fan_in + fan_out).

    `VarianceScaling(1, "fan_avg", "untruncated_normal")` is exactly that (variance 1 / ((fan_in + fan_out) / 2));
    Keras' `GlorotNormal` would truncate at two standard deviations. For a conv kernel the fans count the receptive
    field: fan_in = 3*3*in_channels, fan_out = 3*3*filters.
    """
    import keras

    return keras.initializers.VarianceScaling(1.0, mode="fan_avg", distribution="untruncated_normal", seed=seed)
