"""The batches a run trains and evaluates on.

`epoch_dataset` reshuffles every epoch with an order that depends only on (seed, epoch), so a resumed run sees the
same batches as an uninterrupted one; `eval_dataset` is a split once, in order.
"""


def epoch_dataset(x, y, batch_size, *, seed, first_epoch, last_epoch, shuffle=True):
    """Batches for epochs `[first_epoch, last_epoch)`; epoch e's order depends only on `(seed, e)`.

    Keras' own shuffling draws from global RNG state, which a resumed process cannot reproduce; a
    stateless shuffle keyed by the epoch number can.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    y = tf.convert_to_tensor(y)
    n = int(x.shape[0])

    def one_epoch(epoch):
        order = tf.range(n)
        if shuffle:
            key = tf.stack([tf.cast(seed, tf.int64), epoch])
            order = tf.random.experimental.stateless_shuffle(order, seed=key)
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    epochs = tf.data.Dataset.range(first_epoch, last_epoch)
    batches = epochs.flat_map(one_epoch)
    # A plain (sequential) map: gathering a batch is cheap, and TF 2.21's parallel map logs a spurious
    # "NodeDef mentions attribute use_unbounded_threadpool" error line every epoch.
    return batches.map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx))).prefetch(tf.data.AUTOTUNE)


def eval_dataset(x, y, batch_size):
    """The split `(x, y)` once, in order, in batches of `batch_size` (a known number of batches, so that Keras can
    run several per graph call without running out of data)."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
