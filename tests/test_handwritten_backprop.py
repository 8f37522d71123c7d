"""Proof that the hand-written backward passes of `tfnets.nn.ops` are what trains each app's model.

Every other gradient test compares our gradients with the correct ones, which TensorFlow autodiff of the same
forward pass would give too: a layer that silently fell back to autodiff would pass them. The tests here can only
pass through the hand-written code:

* the ReLU gradient at exactly 0 is 0 in `ops.relu`; autodiff of its forward (`tf.maximum`) gives 1 there;
* `BackwardSwitch` stands in for `tf` inside `tfnets.nn.ops` (every op there applies `tf.custom_gradient` when it is
  called, looking `tf` up in its module), so it sees each hand-written backward function and multiplies its result
  by a per-op flag, 1 or 0. With one op's flag at 0, a couple of real optimizer steps (`train_on_batch` of the model
  an app's own builder returns) must leave EXACTLY the weights whose gradient flows through that op at their
  initial values and move all the others. A weight whose gradient came any other way would still move.

The switch patches the module global `tfnets.nn.ops.tf`, not the op functions: `tfnets.nn.layers` binds the activation
functions (`ops.relu`, ...) into a table at import time, so replacing `ops.relu` itself would not reach
`ManualDense`. If the switch does not reach the running code, no weight freezes and no backward is recorded, so
the tests fail rather than pass vacuously; the autodiff twin of the notMNIST net shows exactly that.

The flags are variables read inside the traced training step, so each model is traced once and then retrained
from a restored initial state with different flags (tracing, not the steps, is what costs time here).

The last tests pin the layer types each app builds its model from (a `keras.layers.Dense` where a `ManualDense`
belongs fails them).
"""

import ast
import dataclasses
import functools
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from apps import _cifar_fc_net_solver_parts as cifar_solver_parts
from apps import catcar_mlp, cifar_fc_net, notmnist_mlp, trigram_embedding
from tfnets.nn import layers as L
from tfnets.nn import losses, ops
from tfnets.nn.models import FullyConnectedModel, FullyConnectedNet
from tfnets.nn.solver import Solver

STEPS = 2  # optimizer steps per training run
# Keras's own layers that compute their gradients by autodiff: none may appear in an app's model.
AUTODIFF_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Embedding,
    keras.layers.Dropout,
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
)


def _hand_written_ops():
    """Names of the public functions of `tfnets.nn.ops` that define a `@tf.custom_gradient` function (from the source)."""
    names = set()
    for outer in ast.parse(inspect.getsource(ops)).body:
        if isinstance(outer, ast.FunctionDef) and any(
            isinstance(node, ast.FunctionDef) and "tf.custom_gradient" in map(ast.unparse, node.decorator_list)
            for node in ast.walk(outer)
        ):
            names.add(outer.name)
    return frozenset(names)


HAND_WRITTEN_OPS = _hand_written_ops()


class BackwardSwitch:
    """Stands in for the `tf` module inside `tfnets.nn.ops`; wraps every `tf.custom_gradient` there.

    An op is named by the public function of `tfnets.nn.ops` that defines its `tf.custom_gradient` function
    (`"affine"`, `"relu"`, `"batch_norm"`, ...). `ran` collects the ops whose hand-written backward was called
    (when traced: once per trace). Each backward's result is multiplied by its op's flag, a variable read when the
    step runs: 1 (exactly the hand-written gradient) until `zero_only` sets it to 0.
    """

    def __init__(self):
        self.ran = set()
        self.keep = {op: tf.Variable(1.0, trainable=False) for op in HAND_WRITTEN_OPS}

    def zero_only(self, zeroed):
        for op, flag in self.keep.items():
            flag.assign(0.0 if op in zeroed else 1.0)

    def __getattr__(self, name):
        return getattr(tf, name)

    def custom_gradient(self, forward_fn):
        # "affine.<locals>._affine"; inside a tf.function AutoGraph converts the op first and the name reads
        # "outer_factory.<locals>.inner_factory.<locals>.tf__dropout.<locals>.else_body_4.<locals>._dropout"
        scopes = [part.removeprefix("tf__") for part in forward_fn.__qualname__.split(".<locals>.")[:-1]]
        op = next(part for part in reversed(scopes) if part in HAND_WRITTEN_OPS)
        keep = self.keep[op]

        def forward(*args):
            out, backward = forward_fn(*args)

            def switched_backward(*upstream):
                self.ran.add(op)
                return tf.nest.map_structure(lambda g: g * tf.cast(keep, g.dtype), backward(*upstream))

            return out, switched_backward

        return tf.custom_gradient(forward)


def _weights(model):
    """Trainable weights by path inside the model ("hidden/kernel", "W1"), as NumPy copies."""
    return {v.path.removeprefix(model.name + "/"): np.array(v.numpy()) for v in model.trainable_variables}


def _frozen(initial, final):
    return {name for name in initial if np.array_equal(initial[name], final[name])}


ALL = ("",)  # the prefix of every weight path


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: `_runs` caches per case
class Case:
    """One model to train: `build()` returns it compiled, with the same initial weights on every call.

    `frozen_by` maps each hand-written op on the model's gradient path to the layers (weight-path prefixes) whose
    weights its backward feeds: zeroing it must freeze exactly those; `ALL` means every trainable weight.
    `may_stay` names weights whose true gradient is 0 (a bias feeding batch norm): genuine training may leave them.
    """

    build: object
    x: object
    y: object
    frozen_by: dict
    may_stay: frozenset = frozenset()

    def frozen_when_zeroed(self, op, names):
        return {name for name in names if any(name.startswith(p) for p in self.frozen_by[op])}


@dataclasses.dataclass
class Runs:
    initial: dict
    plain: dict  # trained without the switch
    genuine: dict  # trained under the switch, every flag 1
    again: dict  # the same, after all the zeroed runs (the restore is complete)
    zeroed: dict  # op -> weights trained with that op's backward zeroed; "all" -> every op's
    ran: set


@functools.lru_cache(maxsize=None)
def _runs(case):
    """Train the case's model STEPS steps without the switch, then under it with each op's backward zeroed."""
    plain_model = case.build()
    plain_initial = _weights(plain_model)
    for _ in range(STEPS):
        plain_model.train_on_batch(case.x, case.y)
    plain = _weights(plain_model)
    switch = BackwardSwitch()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ops, "tf", switch)
        model = case.build()
        model.optimizer.build(model.trainable_variables)
        state = model.variables + model.optimizer.variables  # weights, moving stats, RNG seeds, optimizer slots
        snapshot = [np.array(v.numpy()) for v in state]

        def train(zeroed):
            for variable, value in zip(state, snapshot):
                variable.assign(value)
            switch.zero_only(zeroed)
            for _ in range(STEPS):
                model.train_on_batch(case.x, case.y)
            return _weights(model)

        initial = _weights(model)
        genuine = train(())
        zeroed = {op: train({op}) for op in case.frozen_by}
        zeroed["all"] = train(HAND_WRITTEN_OPS)
        again = train(())
    for name in initial:
        np.testing.assert_array_equal(plain_initial[name], initial[name], err_msg=f"{name}: builds differ")
    return Runs(initial, plain, genuine, again, zeroed, set(switch.ran))


# -- the app models ----------------------------------------------------------------------------------------------
_rng = np.random.default_rng(0)


def _seeded(build, seed=0):
    def seeded_build():
        keras.utils.set_random_seed(seed)  # for initializers and dropout seeds that take no seed of their own
        return build()

    return seeded_build


def _compiled(layers, loss):
    model = keras.Sequential(layers, name="library_layers")
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    return model


_TRIGRAM_DEFAULT = trigram_embedding.Setting(4, 6)  # the assignment's net: momentum SGD, sigmoid units
_TRIGRAM_WIDE = dataclasses.replace(  # the app's "wide" extra (Adam, ReLU, dropout, Glorot init), made tiny
    next(c for c in trigram_embedding.Config(extra=("wide",)).nets if c.activation == "relu"),
    embed_dim=4,
    hidden=6,
)
_TRIGRAM_IDS = _rng.integers(0, 11, (8, 3)).astype("int32")
_TRIGRAM_NEXT = _rng.integers(0, 11, 8).astype("int32")
_CIFAR_HIDDEN = tuple(f"{kind}{layer}" for kind in ("W", "b", "gamma", "beta") for layer in (1, 2))
_IMAGES = _rng.standard_normal((8, 32, 32, 3)).astype("float32")
_LABELS = _rng.integers(0, 10, 8).astype("int32")
_NOTMNIST_X = _rng.random((8, 784)).astype("float32")
_NOTMNIST_Y = _rng.integers(0, 10, 8).astype("int32")

CASES = {
    "notmnist_mlp": Case(
        build=lambda: notmnist_mlp.build_model(hidden_units=6, seed=1),
        x=_NOTMNIST_X,
        y=_NOTMNIST_Y,
        frozen_by={"affine": ALL, "relu": ("hidden/",), "softmax_cross_entropy_per_example": ALL},
    ),
    "catcar_mlp": Case(  # two hidden layers with momentum, as in part e
        build=_seeded(
            lambda: catcar_mlp.build_model(
                catcar_mlp.Setting(hidden=(5, 3), learning_rate=0.1, batch_size=8, init_std=0.3, momentum=0.5),
                input_dim=16,
            )
        ),
        x=_rng.standard_normal((8, 16)).astype("float32"),
        y=np.tile(np.float32([-1, 1]), 4),
        # every unit is tanh, the output included: zeroing tanh's backward stops every gradient
        frozen_by={"affine": ALL, "tanh": ALL, "mean_squared_error_per_example": ALL},
    ),
    "trigram_embedding": Case(
        build=_seeded(lambda: trigram_embedding.build_model(_TRIGRAM_DEFAULT, vocab_size=11)),
        x=_TRIGRAM_IDS,
        y=_TRIGRAM_NEXT,
        frozen_by={
            "embedding_lookup": ("embedding/",),
            "affine": ALL,
            "sigmoid": ("embedding/", "hidden/"),
            "softmax_cross_entropy_per_example": ALL,
        },
    ),
    "trigram_embedding_wide": Case(
        build=_seeded(lambda: trigram_embedding.build_model(_TRIGRAM_WIDE, vocab_size=11)),
        x=_TRIGRAM_IDS,
        y=_TRIGRAM_NEXT,
        frozen_by={
            "embedding_lookup": ("embedding/",),
            "affine": ALL,
            "relu": ("embedding/", "hidden/"),
            "dropout": ("embedding/", "hidden/"),
            "softmax_cross_entropy_per_example": ALL,
        },
    ),
    "cifar_fc_net": Case(  # the "best" part's Keras model (batch norm, dropout, augmentation, Adam); reg 0 so
        # that no hand-added L2 gradient moves a weight whose data gradient is zeroed
        build=lambda: cifar_fc_net.build_model(hidden="5-4", reg=0.0, epochs=1, steps_per_epoch=STEPS, seed=3),
        x=_IMAGES,
        y=_LABELS,
        frozen_by={
            "affine": ALL,
            "batch_norm": _CIFAR_HIDDEN,
            "relu": _CIFAR_HIDDEN,
            "dropout": _CIFAR_HIDDEN,
            "softmax_cross_entropy": ALL,
        },
        may_stay=frozenset({"b1", "b2"}),
    ),
    # Library layers the apps do not use (yet): batch and layer norm, a softmax output, an embedding with MSE.
    "layers_norm_softmax": Case(
        build=_seeded(
            lambda: _compiled(
                [
                    keras.Input((6,)),
                    L.ManualDense(5, activation="relu", name="dense"),
                    L.ManualBatchNormalization(name="bn"),
                    L.ManualLayerNormalization(name="ln"),
                    L.ManualDropout(0.3, name="dropout"),
                    L.ManualDense(3, activation="softmax", name="probs"),
                ],
                losses.SoftmaxCrossEntropy(from_logits=False),
            )
        ),
        x=_rng.standard_normal((8, 6)).astype("float32"),
        y=_rng.integers(0, 3, 8).astype("int32"),
        frozen_by={
            "affine": ALL,
            "relu": ("dense/",),
            "batch_norm": ("dense/", "bn/"),
            "layer_norm": ("dense/", "bn/", "ln/"),
            "dropout": ("dense/", "bn/", "ln/"),
            "softmax": ALL,
            "softmax_cross_entropy_per_example": ALL,
        },
    ),
    "layers_embedding_mse": Case(
        build=_seeded(
            lambda: _compiled(
                [
                    keras.Input((2,), dtype="int32"),
                    L.ManualEmbedding(7, 3, name="embedding"),
                    keras.layers.Flatten(),
                    L.ManualDense(4, activation="tanh", name="hidden"),
                    L.ManualDense(2, activation="sigmoid", name="out"),
                ],
                losses.MeanSquaredError(),
            )
        ),
        x=_rng.integers(0, 7, (8, 2)).astype("int32"),
        y=_rng.random((8, 2)).astype("float32"),
        frozen_by={
            "embedding_lookup": ("embedding/",),
            "affine": ALL,
            "tanh": ("embedding/", "hidden/"),
            "sigmoid": ALL,
            "mean_squared_error_per_example": ALL,
        },
    ),
}
# Negative control: the notMNIST net's autodiff twin (`--gradients autodiff`: keras.layers.Dense and Keras's
# cross-entropy) runs no hand-written backward, so the switch cannot touch it.
AUTODIFF_TWIN = Case(
    build=lambda: notmnist_mlp.build_model(hidden_units=6, seed=1, gradients="autodiff"),
    x=_NOTMNIST_X,
    y=_NOTMNIST_Y,
    frozen_by={},
)


# -- training goes through the hand-written backward passes ------------------------------------------------------
@pytest.mark.parametrize("case_id", CASES)
def test_genuine_training_is_reproducible_moves_every_weight_and_runs_the_hand_written_backwards(case_id):
    case = CASES[case_id]
    runs = _runs(case)
    # Controls: retraining from the restored state repeats the genuine run bit for bit (so every zeroed run started
    # from the same state), and the switch at 1 changes nothing but rounding (its extra multiplications by 1 give
    # the graph optimiser a different graph, which may fuse operations differently).
    for name in runs.initial:
        np.testing.assert_array_equal(runs.again[name], runs.genuine[name], err_msg=name)
        np.testing.assert_allclose(runs.genuine[name], runs.plain[name], rtol=1e-5, atol=1e-8, err_msg=name)
    assert _frozen(runs.initial, runs.genuine) <= case.may_stay, "genuine training left weights untouched"
    assert runs.ran == set(case.frozen_by)


@pytest.mark.parametrize("case_id, op", [(c, op) for c in CASES for op in CASES[c].frozen_by])
def test_zeroing_one_hand_written_backward_freezes_exactly_the_weights_behind_it(case_id, op):
    case = CASES[case_id]
    runs = _runs(case)
    expected = case.frozen_when_zeroed(op, runs.initial)
    assert expected, "the case names no weight"
    assert _frozen(runs.initial, runs.zeroed[op]) == expected


@pytest.mark.parametrize("case_id", CASES)
def test_no_weight_gets_a_gradient_except_through_the_hand_written_backwards(case_id):
    runs = _runs(CASES[case_id])
    assert _frozen(runs.initial, runs.zeroed["all"]) == set(runs.initial)


def test_the_switch_cannot_touch_autodiff_layers():
    """The same checks fail for a model built from Keras's autodiff layers: nothing is recorded or frozen."""
    runs = _runs(AUTODIFF_TWIN)
    assert runs.ran == set()
    assert _frozen(runs.initial, runs.zeroed["all"]) == set()
    for name in runs.initial:
        np.testing.assert_array_equal(runs.zeroed["all"][name], runs.genuine[name], err_msg=name)


def test_cifar_solver_and_net_loss_take_their_gradients_from_the_hand_written_backwards(monkeypatch):
    """The CIFAR app's other parts train `FullyConnectedNet`s with the Solver, on `net.loss(X, y)` gradients."""
    switch = BackwardSwitch()
    monkeypatch.setattr(ops, "tf", switch)
    net = cifar_solver_parts.fresh_net(5, [5, 4], dropout_keep_ratio=0.5, normalization="layernorm", weight_scale=5e-2)
    hidden = {f"{kind}{layer}" for kind in ("W", "b", "gamma", "beta") for layer in (1, 2)}
    frozen_by = {
        "affine": set(net.params),
        "layer_norm": hidden,
        "relu": hidden,
        "dropout": hidden,
        "softmax_cross_entropy": set(net.params),
    }
    assert set(net.params) == hidden | {"W3", "b3"}
    for op, expected in [(None, set()), *frozen_by.items()]:
        switch.zero_only({op})
        _, grads = net.loss(_IMAGES, _LABELS)
        assert {name for name, g in grads.items() if not np.any(g)} == expected, op
    assert switch.ran == set(frozen_by)

    data = {"X_train": _IMAGES, "y_train": _LABELS, "X_val": _IMAGES[:2], "y_val": _LABELS[:2]}
    initial = {name: np.array(v.numpy()) for name, v in net.params.items()}
    for zeroed, expected in [({"softmax_cross_entropy"}, set(initial)), ((), set())]:
        switch.zero_only(zeroed)
        for name, value in initial.items():
            net.params[name].assign(value)
        Solver(
            net,
            data,
            update_rule="adam",
            optim_config={"learning_rate": 1e-2},
            batch_size=4,
            num_epochs=1,
            verbose=False,
        ).train()  # 2 steps
        assert _frozen(initial, {name: v.numpy() for name, v in net.params.items()}) == expected, zeroed


# -- the ops themselves: a zeroed backward gives zero gradients, autodiff would not --------------------------------
def _op_calls():
    """A scalar function of float64 inputs for every hand-written op (each `tf.custom_gradient` in `tfnets.nn.ops`)."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    stats = (np.zeros(3), np.ones(3))
    return {
        "affine": ([x, w, b], lambda x, w, b: tf.reduce_sum(ops.affine(x, w, b) ** 2)),
        "relu": ([x], lambda x: tf.reduce_sum(ops.relu(x) ** 2)),
        "tanh": ([x], lambda x: tf.reduce_sum(ops.tanh(x) ** 2)),
        "sigmoid": ([x], lambda x: tf.reduce_sum(ops.sigmoid(x) ** 2)),
        "softmax": ([x], lambda x: tf.reduce_sum(ops.softmax(x) ** 2)),
        "softmax_cross_entropy": ([x], lambda x: ops.softmax_cross_entropy(x, [0, 1, 2, 0])),
        "softmax_cross_entropy_per_example": (
            [x],
            lambda x: tf.reduce_sum(ops.softmax_cross_entropy_per_example(x, [0, 1, 2, 0])),
        ),
        "mean_squared_error": ([x, w[:, :4].T], ops.mean_squared_error),
        "mean_squared_error_per_example": (
            [x, w[:, :4].T],
            lambda p, t: tf.reduce_sum(ops.mean_squared_error_per_example(p, t)),
        ),
        "svm_loss": ([x], lambda s: ops.svm_loss(s, [0, 1, 2, 0])),
        "dropout": ([x], lambda x: tf.reduce_sum(ops.dropout(x, 0.5, training=True, seed=3) ** 2)),
        "batch_norm": (
            [x, b[:3], w[:, 0]],
            lambda x, g, be: tf.reduce_sum(ops.batch_norm(x, g, be, *stats, training=True)[0] ** 3),
        ),
        "batch_norm (inference)": (
            [x, b[:3], w[:, 0]],
            lambda x, g, be: tf.reduce_sum(ops.batch_norm(x, g, be, *stats, training=False)[0] ** 3),
        ),
        "layer_norm": ([x, b[:3], w[:, 0]], lambda x, g, be: tf.reduce_sum(ops.layer_norm(x, g, be) ** 3)),
        "embedding_lookup": ([w], lambda t: tf.reduce_sum(ops.embedding_lookup([[0, 2], [2, 1]], t) ** 2)),
    }


def _gradients(fn, values):
    tensors = [tf.constant(v) for v in values]
    with tf.GradientTape() as tape:
        tape.watch(tensors)
        out = fn(*tensors)
    return [g.numpy() for g in tape.gradient(out, tensors)]


def test_every_custom_gradient_in_ops_is_exercised_here():
    """The op list above covers each `@tf.custom_gradient` function of `tfnets.nn.ops` (found in its source)."""
    assert HAND_WRITTEN_OPS == {name.split(" ")[0] for name in _op_calls()}


@pytest.mark.parametrize("name", list(_op_calls()))
def test_each_op_differentiates_only_through_its_hand_written_backward(name, monkeypatch):
    op = name.split(" ")[0]
    values, fn = _op_calls()[name]
    genuine = _gradients(fn, values)
    switch = BackwardSwitch()
    monkeypatch.setattr(ops, "tf", switch)
    np.testing.assert_array_equal(_gradients(fn, values)[0], genuine[0])  # the switch at 1 changes nothing
    switch.zero_only({op})
    zeroed = _gradients(fn, values)
    assert switch.ran == {op}
    assert all(np.abs(g).max() > 0 for g in genuine)
    assert all(not g.any() for g in zeroed)  # autodiff of the forward would give `genuine` again


def test_relu_gradient_at_exactly_zero_is_the_hand_written_zero():
    x = tf.constant([[-1.0, 0.0, 2.0]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = ops.relu(x)
        autodiff = tf.maximum(x, tf.zeros_like(x))  # ops.relu's forward, differentiated by TensorFlow
    np.testing.assert_array_equal(ours, autodiff)
    np.testing.assert_array_equal(tape.gradient(ours, x), [[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(tape.gradient(autodiff, x), [[0.0, 1.0, 1.0]])  # what a fallback would give


@pytest.mark.parametrize("graph", [False, True])
def test_manual_dense_relu_passes_no_gradient_through_exact_zeros(graph):
    """All-zero weights put every pre-activation at exactly 0: the hand-written ReLU sends no gradient back."""
    layer = L.ManualDense(3, activation="relu", kernel_initializer="zeros")
    x = tf.constant(np.random.default_rng(2).standard_normal((4, 2)), tf.float32)
    layer.build(x.shape)

    def gradients(x):
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(layer(x))
        return tape.gradient(out, [layer.kernel, layer.bias])  # autodiff of tf.maximum: x summed, and 4

    grads = tf.function(gradients)(x) if graph else gradients(x)
    assert all(not g.numpy().any() for g in grads)


# -- the layers each app's model is built from ------------------------------------------------------------------
def _layers(model):
    """(name, class) of every layer below the model, depth first through nested models, Input layers left out."""
    found = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            found += [(layer.name, type(layer))] + (_layers(layer) if isinstance(layer, keras.Model) else [])
    return found


def _assert_no_autodiff_layers(model):
    assert not [name for name, kind in _layers(model) if issubclass(kind, AUTODIFF_LAYERS)]


def test_notmnist_mlp_is_two_manual_dense_layers_and_the_manual_loss():
    model = notmnist_mlp.build_model(hidden_units=6)
    assert _layers(model) == [("hidden", L.ManualDense), ("logits", L.ManualDense)]
    assert [model.get_layer(n).activation for n in ("hidden", "logits")] == ["relu", None]
    assert type(model.loss) is losses.SoftmaxCrossEntropy
    # the autodiff twin that `--gradients autodiff` asks for really is Keras's Dense
    twin = notmnist_mlp.build_model(hidden_units=6, gradients="autodiff")
    assert _layers(twin) == [("hidden", keras.layers.Dense), ("logits", keras.layers.Dense)]


@pytest.mark.parametrize("hidden", [(5,), (5, 3)])
def test_catcar_mlp_is_manual_tanh_dense_layers_and_the_manual_mse(hidden):
    model = catcar_mlp.build_model(catcar_mlp.Setting(hidden, 0.1, 4, 0.1, momentum=0.5), input_dim=16)
    names = [f"hidden{i + 1}" for i in range(len(hidden))] + ["output"]
    assert _layers(model) == [(name, L.ManualDense) for name in names]
    assert {model.get_layer(n).activation for n in names} == {"tanh"}
    assert type(model.loss) is losses.MeanSquaredError


@pytest.mark.parametrize(
    "config, merge, merge_layer",
    [
        (_TRIGRAM_DEFAULT, "concat", keras.layers.Flatten),
        (_TRIGRAM_DEFAULT, "sum", L.SumOverWords),
        (_TRIGRAM_WIDE, "concat", keras.layers.Flatten),
    ],
)
def test_trigram_embedding_is_manual_embedding_dense_dropout_and_the_manual_loss(config, merge, merge_layer):
    model = trigram_embedding.build_model(config, vocab_size=11, merge=merge)
    expected = [("embedding", L.ManualEmbedding), (merge, merge_layer), ("hidden", L.ManualDense)]
    expected += [("dropout", L.ManualDropout)] if config.dropout else []
    assert _layers(model) == expected + [("logits", L.ManualDense)]
    assert model.get_layer("hidden").activation == config.activation
    assert type(model.loss) is losses.SoftmaxCrossEntropy


def test_trigram_ensemble_members_keep_their_manual_layers():
    members = [trigram_embedding.build_model(_TRIGRAM_WIDE, vocab_size=11, name=f"net{i}") for i in range(2)]
    ensemble = trigram_embedding.build_ensemble(members, dataclasses.replace(_TRIGRAM_WIDE, members=2))
    _assert_no_autodiff_layers(ensemble)
    kinds = [kind for _, kind in _layers(ensemble)]
    assert kinds.count(L.ManualEmbedding) == 2 and kinds.count(L.ManualDense) == 4


def test_cifar_fc_net_is_a_fully_connected_model_with_its_own_manual_train_step():
    model = cifar_fc_net.build_model(hidden="5-4", epochs=1, steps_per_epoch=1)
    assert type(model) is FullyConnectedModel and _layers(model) == []  # weights of its own, no Keras layers
    assert model.normalization == "batchnorm" and model.dropout_keep_ratio < 1
    assert sorted(v.path.removeprefix(model.name + "/") for v in model.trainable_variables) == sorted(
        f"{kind}{layer}"
        for layer in (1, 2, 3)
        for kind in ("W", "b", "gamma", "beta")
        if layer < 3 or kind in ("W", "b")
    )
    net = cifar_solver_parts.fresh_net(0, [5, 4])
    assert type(net) is FullyConnectedNet and type(net.as_keras_model()) is FullyConnectedModel
