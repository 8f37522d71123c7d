"""Training and evaluation under MultiWorkerMirroredStrategy, for `tfnets.experiment.runs.Run.fit`.

Keras 3.15's `fit` and `evaluate` fail under MultiWorkerMirroredStrategy (a PerReplica value reaches an eager
conversion; keras-team/keras#20585). The loop below does what `fit` does, with the model's own `train_step` and
`test_step` run on every replica by `strategy.run`, so overridden steps, losses, metrics and callbacks behave as
under `fit`. Each global batch is split over the workers, every worker taking a strided share of it.
"""

import keras


def is_multi_worker():
    import tensorflow as tf

    return isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy)


def _distributed(dataset):
    """`dataset` (global batches) as a distributed dataset where replica r of R gets rows r, r+R, ... of each."""
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()

    def shard(context):
        share = lambda x: x[context.input_pipeline_id :: context.num_input_pipelines]  # noqa: E731
        local = dataset.map(lambda x, y: (share(x), share(y)))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return local.with_options(options)

    return strategy.distribute_datasets_from_function(shard)


def _metric_logs(model):
    return {key: float(value) for key, value in model.get_metrics_result().items()}


def evaluate_multi_worker(model, dataset):
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    test_function = getattr(model, "_tfnets_test_function", None)
    if test_function is None:
        test_function = tf.function(lambda batch: strategy.run(model.test_step, args=(batch,)), autograph=False)
        model._tfnets_test_function = test_function
    model.reset_metrics()
    for batch in _distributed(dataset):
        test_function(batch)
    return _metric_logs(model)


def fit_multi_worker(model, dataset, valid, callbacks, *, epochs, initial_epoch, steps_per_epoch, verbose):
    """`model.fit(dataset, validation_data=valid, ...)` for MultiWorkerMirroredStrategy."""
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    # autograph=False, as Keras' own fit runs train_step (do_not_convert): converting Keras' code cost about 0.7 s
    # per process (profiled).
    train_function = tf.function(lambda batch: strategy.run(model.train_step, args=(batch,)), autograph=False)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=False,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
    )
    batches = iter(_distributed(dataset))
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            train_function(next(batches))
            callback_list.on_train_batch_end(step, _metric_logs(model))
        logs = _metric_logs(model)
        if valid is not None:
            logs.update({f"val_{key}": value for key, value in evaluate_multi_worker(model, valid).items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
