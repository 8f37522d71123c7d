"""apps.trigram_embedding: the network against a NumPy forward pass, early stopping, the predict subcommand,
and the whole pipeline on a small real subset."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from apps import trigram_embedding as app
from apps._trigram_embedding_report import nearest_words
from tfnets.data import load_trigrams
from tfnets.errors import ConfigError, ModelError
from tfnets.experiment.cli import run_main
from tfnets.nn.calibration import softmax
from tfnets.nn.layers import MeanProbabilityLogits

QUICK = ["--quick", "--configs", "32x256", "--extra", "none"]
NET = "D32_P256"  # the folder of --configs 32x256


# -- the network ----------------------------------------------------------------------------------------


def _numpy_forward(model, ids, merge):
    """Independent forward pass: R[ids] -> concat/sum -> sigmoid(. W1 + b1) -> . W2 + b2."""
    weights = {w.path.split("/")[-2] + "/" + w.name: w.numpy() for w in model.weights}
    table = weights["embedding/embeddings"]
    vectors = table[ids]  # (N, 3, D)
    merged = vectors.reshape(len(ids), -1) if merge == "concat" else vectors.sum(axis=1)
    hidden = 1 / (1 + np.exp(-(merged @ weights["hidden/kernel"] + weights["hidden/bias"])))
    return hidden @ weights["logits/kernel"] + weights["logits/bias"]


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_network_matches_numpy_and_shares_one_embedding(merge):
    keras.utils.set_random_seed(0)
    # A larger init than the assignment's 0.01 so that word order visibly changes the outputs.
    model = app.build_model(app.Setting(4, 6), vocab_size=20, merge=merge, init_std=0.5)
    ids = np.array([[1, 2, 3], [3, 2, 1], [0, 19, 7]], dtype="int32")
    logits = model.predict(ids, verbose=0)
    np.testing.assert_allclose(logits, _numpy_forward(model, ids, merge), rtol=1e-4, atol=1e-5)
    embeddings = [w for w in model.weights if "embedding" in w.path]
    assert len(embeddings) == 1 and tuple(embeddings[0].shape) == (20, 4)
    swapped = not np.allclose(logits[0], logits[1], atol=1e-6)
    assert swapped == (merge == "concat")  # concatenation keeps word order, the sum forgets it


def test_init_draws_weights_and_biases_from_a_small_normal():
    keras.utils.set_random_seed(1)
    model = app.build_model(app.Setting(32, 256), vocab_size=250)
    model.build((None, 3))
    biases = model.get_layer("logits").bias.numpy()
    kernel = model.get_layer("hidden").kernel.numpy()
    assert abs(biases.std() - 0.01) < 0.002 and abs(kernel.std() - 0.01) < 0.001  # biases are NOT zero
    assert not np.allclose(model.get_layer("hidden").bias.numpy()[:10], biases[:10])


def test_wide_extra_has_relu_units_and_keras_default_init():
    keras.utils.set_random_seed(0)
    model = app.build_model(app.Setting(8, 64, "adam", 1e-3, activation="relu", init="glorot"), vocab_size=30)
    hidden = model.get_layer("hidden")
    assert hidden.activation == "relu" and not hidden.bias.numpy().any()
    limit = np.sqrt(6 / (3 * 8 + 64))  # Glorot-uniform bound for the (24, 64) kernel
    assert np.abs(hidden.kernel.numpy()).max() <= limit and np.abs(hidden.kernel.numpy()).max() > 0.9 * limit
    ids = np.array([[1, 2, 3]], "int32")
    merged = model.get_layer("embedding").embeddings.numpy()[ids].reshape(1, -1)
    pre = merged @ hidden.kernel.numpy()
    relu_out = keras.Model(model.input, hidden.output).predict(ids, verbose=0)
    np.testing.assert_allclose(relu_out, np.maximum(pre, 0), rtol=1e-5, atol=1e-7)


def test_mean_probability_logits_softmax_is_the_mean_of_the_nets_probabilities():
    rng = np.random.default_rng(0)
    logits = [rng.normal(scale=s, size=(5, 7)).astype("float32") for s in (1.0, 3.0, 80.0)]  # 80: far-apart logits
    out = np.asarray(MeanProbabilityLogits()([keras.ops.convert_to_tensor(x) for x in logits]))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(softmax(out), np.mean([softmax(x) for x in logits], axis=0), rtol=1e-5, atol=1e-7)


def test_ensemble_exports_one_model_that_serves_the_mean_probability(tmp_path):
    from tfnets.experiment.export import export_model

    keras.utils.set_random_seed(3)
    nets = [
        app.build_model(app.Setting(4, 8, "adam", 1e-3), vocab_size=20, init_std=0.5, name=f"net{k}") for k in range(2)
    ]
    ensemble = app.build_ensemble(nets, app.Setting(4, 8, "adam", 1e-3, members=2))
    ids = np.array([[1, 2, 3], [19, 0, 5]], "int32")
    expected = np.mean([softmax(net.predict(ids, verbose=0)) for net in nets], axis=0)
    export_model(
        ensemble,
        tmp_path / "export",
        class_names=[f"w{i}" for i in range(20)],
        input_shape=[3],
        pixel_scale=1.0,
        extra={"app": app.APP},
    )
    served = app.load_served(tmp_path / "export").predict_proba(np.asarray(ids, np.int32))
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-7)
    reloaded = keras.models.load_model(tmp_path / "export" / "model.keras")
    np.testing.assert_allclose(softmax(reloaded.predict(ids, verbose=0)), expected, rtol=1e-5, atol=1e-7)


def test_optimizer_is_momentum_sgd_with_the_given_rates():
    model = app.build_model(app.Setting(8, 16, "sgd", 0.15, 0.85), vocab_size=30)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.15)
    assert model.optimizer.momentum == pytest.approx(0.85)


@pytest.mark.parametrize(
    "text, pairs",
    [("32x256,16x128", ((32, 256), (16, 128))), ("8X64", ((8, 64),)), ([[8, 64], "4x4"], ((8, 64), (4, 4)))],
)
def test_dp_list(text, pairs):
    assert app.dp_list(text) == pairs


@pytest.mark.parametrize("text", ["32", "0x5", "axb", "", [[8]]])
def test_dp_list_rejects_bad_pairs(text):
    with pytest.raises(ConfigError):
        app.dp_list(text)


# -- predict subcommand helpers -------------------------------------------------------------------------

VOCAB = ["i", "do", "not", "nt", "no", "now", "the"]


def test_word_ids_and_unknown_word_message():
    assert app.word_ids(["I do", "not"], VOCAB) == [0, 1, 2]
    with pytest.raises(ConfigError) as err:
        app.word_ids(["i", "do", "nott"], VOCAB)
    message = str(err.value)
    assert "'nott' is not one of the 7 vocabulary words" in message and "nearest: not" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="exactly three words"):
        app.word_ids(["i do"], VOCAB)


def test_nearest_words_by_cosine():
    embeddings = np.array([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0], [0.0, 1.0]])
    assert [w for w, _ in nearest_words(embeddings, ["a", "b", "c", "d"], "a", k=3)] == ["b", "d", "c"]


def test_missing_model_is_a_one_line_error(tmp_path):
    with pytest.raises(ModelError, match="holds no exported trigram model"):
        app.main(["predict", "i do not", "--model-dir", str(tmp_path)])


# -- the whole app on real data -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("trigram")
    argv = [*QUICK, "--data-dir", str(data_dir), "--out", str(out), "--export-dir", str(out / "export")]
    result = app.main(argv)
    return argv, result, next((out / "trigram_embedding").iterdir()), out / "export"


def test_quick_run_table_report_and_export(quick_run, data_dir):
    _, result, run_dir, export = quick_run
    assert list(result.parts) == [NET] and result.run_path == run_dir / NET  # the one net is the exported one
    assert result.export_path == export and result.model is not None
    row = app.results_row(app.Setting(32, 256), "concat", result.parts[NET])
    assert row["model"].startswith("D=32, P=256, SGD lr=0.15, momentum=0.85")
    assert {"valid_CE", "valid_acc_%", "valid_top10_%", "test_CE", "test_acc_%", "test_top10_%"} <= set(row)
    assert row["valid_top10_%"] >= row["valid_acc_%"]
    # The count baseline row of the same (quick) split has the nets' columns.
    baseline = app.count_baseline_row(load_trigrams(data_dir).subset(2000, 500, seed=0), "concat")
    assert baseline["model"].startswith("count baseline, not a net") and list(baseline) == list(row)
    assert 0 < baseline["valid_acc_%"] <= baseline["valid_top10_%"] <= 100 and baseline["valid_CE"] > 0
    report = (run_dir / "report.md").read_text()
    for heading in ("## Data caveat", "## Results", "## Part b:", "## Nearest neighbours", "## 2-D PCA"):
        assert heading in report
    assert "NOT the original" in report and f"| {baseline['model']} |" in report
    assert (run_dir / NET / "checkpoint.npz").exists() and (run_dir / "embeddings_pca.png").exists()
    metadata = json.loads((export / "metadata.json").read_text())
    assert len(metadata["class_names"]) == 250 and metadata["output"] == "logits"


def test_headlines_read_the_assignment_net_the_run_trained(quick_run):
    _, result, run_dir, _ = quick_run
    found = app.headlines(run_dir)
    assert found == {"valid_accuracy": (result.parts[NET].best["valid_accuracy"], run_dir / NET / "metrics.json")}


def test_predict_uses_the_saved_model_and_matches_keras(quick_run, capsys):
    _, _, _, export = quick_run
    ranked = app.main(["predict", "i do not", "--model-dir", str(export)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "i do not ..." and len(lines) == 11 and lines[1].startswith(" 1. ")
    metadata = json.loads((export / "metadata.json").read_text())
    vocabulary = metadata["class_names"]
    model = keras.models.load_model(export / "model.keras")
    ids = [vocabulary.index(w) for w in ("i", "do", "not")]
    # Calibrated: the logits divided by the temperature fitted on the validation split at export.
    logits = model.predict(np.array([ids], "int32"), verbose=0)[0] / metadata["temperature"]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    expected = np.argsort(-probabilities)[:10]
    assert [w for w, _ in ranked] == [vocabulary[i] for i in expected]
    np.testing.assert_allclose([p for _, p in ranked], probabilities[expected], rtol=1e-4)


def test_rerun_with_another_model_resumes_the_finished_one(quick_run, capsys):
    argv, result, run_dir, _ = quick_run
    before = json.loads((run_dir / NET / "metrics.json").read_text())
    history = (run_dir / NET / "history.csv").read_text()
    capsys.readouterr()
    again = app.main([*argv, "--configs", "32x256,4x4"])  # the later --configs wins
    assert "all 2 epochs already trained" in capsys.readouterr().out
    after = json.loads((run_dir / NET / "metrics.json").read_text())
    before.pop("timing"), after.pop("timing")
    assert before == after and (run_dir / NET / "history.csv").read_text() == history
    assert list(again.parts) == [NET, "D4_P4"]
    assert again.parts[NET].best == result.parts[NET].best and again.parts[NET].history == result.parts[NET].history


def test_ensemble_reuses_the_wide_net_and_trains_the_others_from_their_own_seeds(data_dir, tmp_path, capsys):
    argv = [
        "--quick",
        "--epochs",
        "1",
        "--configs",
        "4x4",
        "--data-dir",
        str(data_dir),
        "--out",
        str(tmp_path),
        "--export-dir",
        str(tmp_path / "export"),
    ]
    app.main([*argv, "--extra", "wide"])
    capsys.readouterr()
    result = app.main([*argv, "--extra", "wide,ensemble", "--ensemble-size", "3"])
    out = capsys.readouterr().out
    run_dir = next((tmp_path / "trigram_embedding").iterdir())
    wide_name = "D128_P1024_relu_adam_drop0.5"
    # Member 0 is the wide net, loaded once for both rows.
    assert out.count(f"{wide_name}: all 1 epochs already trained") == 1
    assert json.loads((run_dir / f"{wide_name}_seed1" / "config.json").read_text())["member"] == 1
    wide, ensemble = result.parts[wide_name], result.parts[f"{wide_name}_x3"]
    assert list(ensemble.parts) == [wide_name, f"{wide_name}_seed1", f"{wide_name}_seed2"]
    assert ensemble.parts[wide_name] is wide
    recorded = json.loads((run_dir / f"{wide_name}_x3" / "metrics.json").read_text())
    assert recorded["row"] == ensemble.metrics["row"] and recorded["scores"]["valid"]["accuracy"] == pytest.approx(
        ensemble.final["valid_accuracy"]
    )
    row = ensemble.metrics["row"]
    assert row["model"].startswith("mean probability of 3 nets (D=128, P=1024") and row["best_epoch"] == "1/1/1"
    assert row["epochs_run"] == 3 and row["valid_CE"] != wide.best["valid_loss"]
    assert json.loads((tmp_path / "export" / "metadata.json").read_text())["output"] == "logits"
    # The results page reads the default ensemble's validation accuracy from the folder the app wrote.
    assert app.headlines(run_dir)["ensemble_valid_accuracy"] == (
        recorded["scores"]["valid"]["accuracy"],
        run_dir / f"{wide_name}_x3" / "metrics.json",
    )


def test_extra_list():
    assert app.extra_list("adam,big") == ("adam", "big") and app.extra_list("none") == ()
    assert app.extra_list(["wide", "adam"]) == ("wide", "adam") and app.extra_list([]) == ()  # a config file's
    with pytest.raises(
        ConfigError,
        match=r"--extra got unknown value\(s\) 'huge'; choose a comma-separated list "
        r"from adam, big, wide, ensemble, or 'none'",
    ):
        app.extra_list("adam,huge")


def test_cli_unknown_word_exits_nonzero_without_traceback(quick_run):
    _, _, _, export = quick_run
    result = subprocess.run(
        [sys.executable, "-m", "apps.trigram_embedding", "predict", "i do nott", "--model-dir", str(export)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 'nott' is not one of the 250 vocabulary words; nearest: not")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv, keywords, fragment",
    [
        (["--configs", "32"], {"configs": "32"}, "DxP pairs"),
        (["--momentum", "1.2"], {"momentum": 1.2}, "--momentum must be in [0, 1)"),
        (["--ensemble-size", "1"], {"ensemble_size": 1}, "--ensemble-size must be at least 2"),
    ],
)
def test_bad_settings_stop_with_one_line(data_dir, tmp_path, capsys, argv, keywords, fragment):
    code = run_main(app.main, [*argv, "--quick", "--data-dir", str(data_dir), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "trigram_embedding").exists()  # stopped before any work
    with pytest.raises(ConfigError) as from_python:  # the same rule from Python
        app.run(quick=True, data_dir=str(data_dir), out=str(tmp_path), **keywords)
    assert fragment in str(from_python.value) and "\n" not in str(from_python.value)
