"""apps.results: which run folders count as a part's result, what the page and README block say, and the docs' links.

The run folders are written here, in the layout the apps write (`config.json` from the app's own parser,
`metrics.json` with `final` metrics), so these tests need no data and no training.
"""

import json
import os
import re
from pathlib import Path

import pytest

from apps import results
from apps.notmnist_mlp import Config as NotmnistMlpConfig

ROOT = Path(__file__).resolve().parents[1]


def write_run(runs, app, run_id, config_class, argv=(), test_accuracy=None, quick=False, mtime=None):
    """A run folder like the apps write: the app's run configuration and every flag (`settings`) in config.json;
    metrics.json only once training finished."""
    folder = Path(runs) / app / run_id
    folder.mkdir(parents=True)
    declared = config_class.make(config_class.from_argv(list(argv)), quick=quick)
    identity, settings = declared.identity(), declared.settings()
    config = {
        "app": app,
        **identity,
        "distribution": {"devices": ["/device:CPU:0"], "replicas": 1},
        "settings": {**settings, "out": str(runs), "data_dir": "../shared/data"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    if test_accuracy is not None:
        metrics = folder / "metrics.json"
        metrics.write_text(
            json.dumps(
                {
                    "final": {"test_accuracy": test_accuracy, "valid_accuracy": 0.5},
                    "best": {},
                    "epochs": config["epochs"],
                }
            )
        )
        if mtime is not None:
            os.utime(metrics, (mtime, mtime))
    return folder


def part(key):
    return next(p for p in results.PARTS if p.key == key)


def run_results(tmp_path, runs, *extra):
    out = tmp_path / "docs" / "results.md"
    readme = tmp_path / "README.md"
    if not readme.exists():
        readme.write_text(f"intro\n{results.START}\nold\n{results.END}\nrest\n")
    results.main(["--runs", str(runs), "--out", str(out), "--readme", str(readme), *extra])
    return out.read_text(), readme.read_text()


def test_only_the_latest_finished_run_of_the_default_settings_counts(tmp_path):
    runs = tmp_path / "runs"
    parser = NotmnistMlpConfig
    write_run(runs, "notmnist_mlp", "seed0-old", parser, test_accuracy=0.9000, mtime=1_000_000)
    write_run(runs, "notmnist_mlp", "seed0-default", parser, test_accuracy=0.9116, mtime=2_000_000)
    # Newer, but not results of the default command: other settings, a smoke test, an unfinished run.
    write_run(runs, "notmnist_mlp", "seed0-epochs50", parser, ["--epochs", "50"], test_accuracy=0.9911, mtime=3_000_000)
    write_run(
        runs, "notmnist_mlp", "seed0-lr03", parser, ["--learning-rate", "0.3"], test_accuracy=0.9922, mtime=3_000_000
    )
    write_run(runs, "notmnist_mlp", "quick-x", parser, test_accuracy=0.4950, quick=True, mtime=3_000_000)
    write_run(runs, "notmnist_mlp", "seed0-unfinished", parser)

    measure = part("notmnist_mlp").assignment[0]
    found = results.find(runs, "notmnist_mlp", measure)
    assert found is not None and found.run.name == "seed0-default"
    assert found.value == pytest.approx(91.16)

    page, _ = run_results(tmp_path, runs)
    row = next(line for line in page.splitlines() if line.startswith("| ECE421 part 1"))
    assert "91.16 %" in row and "99." not in row and "49.50" not in row
    assert "`notmnist_mlp/seed0-default`" in page and "seed0-unfinished" not in page
    provenance = page.split("## Where each number comes from", 1)[1]
    source = next(line for line in provenance.splitlines() if "`notmnist_mlp/seed0-default`" in line)
    assert source.split(" | ")[4:6] == ["`../shared/data`", "0"]  # the data folder the run was given, its seed
    # ≈ 90–92 %: 91.16 lies inside the original range.
    assert row.split(" | ")[3] == "within"


def test_an_unfinished_run_alone_is_not_run_and_names_its_command(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "notmnist_mlp", "seed0-unfinished", NotmnistMlpConfig)
    page, _ = run_results(tmp_path, runs)
    provenance = page.split("## Where each number comes from", 1)[1]
    line = next(text for text in provenance.splitlines() if text.startswith("| ECE421 part 1"))
    assert "**not run**" in line and "`python -m apps.notmnist_mlp --data-dir ../shared/data`" in line


def test_a_study_run_is_read_from_its_own_sub_folder(tmp_path):
    """The improved notMNIST CNN counts from `--recipe improved`, or from the `improved/` folder of `--study all`."""
    from apps.notmnist_cnn import Config

    runs = tmp_path / "runs"
    study = write_run(runs, "notmnist_cnn", "seed0-study", Config, ["--study", "all"], test_accuracy=0.9348)
    improved = part("notmnist_cnn").improved
    assert results.latest(runs, "notmnist_cnn", improved)[1] is None  # the study has not reached its last row
    (study / "improved").mkdir()
    (study / "improved" / "metrics.json").write_text(json.dumps({"final": {"test_accuracy": 0.9439}}))
    measure, found = results.latest(runs, "notmnist_cnn", improved)
    assert measure.args == ("--study", "all") and found.value == pytest.approx(94.39)


def test_error_and_exported_network_parts_read_what_the_apps_name(tmp_path):
    """dl_principles' part A error is a fraction from the app's own folder; cat-vs-car's number is the network the
    app recorded as exported, and only once the app chose among every part."""
    from apps import catcar_mlp, dl_principles

    runs = tmp_path / "runs"
    dlp = write_run(runs, "dl_principles", "seed0", dl_principles.Config)
    (dlp / "A_relu_zeros").mkdir()
    (dlp / "A_relu_zeros" / "metrics.json").write_text(json.dumps({"final": {"test_accuracy": 0.52}}))
    found = results.find(runs, "dl_principles", part("dl_principles_a").assignment[0])
    assert found.value == pytest.approx(0.48) and found.finished == dlp / "A_relu_zeros" / "metrics.json"
    assert results.find(runs, "dl_principles", part("dl_principles_c").assignment[0]) is None  # part C not run

    catcar = write_run(runs, "catcar_mlp", "seed0", catcar_mlp.Config)
    for folder, accuracy in (("part_a_final", 0.81), ("part_d", 0.83)):
        (catcar / folder).mkdir()
        (catcar / folder / "metrics.json").write_text(json.dumps({"final": {"test_accuracy": accuracy}}))
    measure = part("catcar").assignment[0]
    assert results.find(runs, "catcar_mlp", measure) is None  # nothing exported yet
    record = {"model": "a: one hidden layer", "folder": "part_a_final", "parts": list(catcar_mlp.PARTS)}
    (catcar / catcar_mlp.EXPORTED_FILE).write_text(json.dumps(record))
    assert results.find(runs, "catcar_mlp", measure).value == pytest.approx(81.0)  # the app's choice, not the best
    (catcar / catcar_mlp.EXPORTED_FILE).write_text(json.dumps({**record, "parts": ["a", "b"]}))
    assert results.find(runs, "catcar_mlp", measure) is None


def test_a_depth_width_budget_counts_the_architecture_the_app_exports(tmp_path):
    """The budget's number is read from its depth-sweep table with the app's own choice (best final validation
    accuracy), not the table's first row (the table is sorted by validation loss)."""
    from apps.mnist_depth_width import Config

    runs = tmp_path / "runs"
    run = write_run(runs, "mnist_depth_width", "seed0", Config)
    measure = part("depth_width_200").improved[0]
    assert results.find(runs, "mnist_depth_width", measure) is None  # no budget has finished its sweep
    (run / "budget_200").mkdir()
    table = "trial,layers,status,objective,final_valid_accuracy,final_test_accuracy\n"
    table += 'layers=100_100,"[100, 100]",completed,0.05,0.984,0.9851\n'
    table += "layers=200,[200],completed,0.06,0.986,0.9843\n"
    (run / "budget_200" / "depth_results.csv").write_text(table)
    found = results.find(runs, "mnist_depth_width", measure)
    assert found.value == pytest.approx(98.43) and found.finished == run / "budget_200" / "depth_results.csv"
    assert results.find(runs, "mnist_depth_width", part("depth_width_100").improved[0]) is None


def test_the_mnist_cnn_parts_are_read_from_the_study_table_and_the_final_folder(tmp_path):
    from apps.mnist_cnn import Config

    runs = tmp_path / "runs"
    run = write_run(runs, "mnist_cnn", "seed0", Config)
    (run / "dropout_study").mkdir()
    table = "trial,dropout,status,final_test_accuracy\ndropout=0.1,0.1,completed,0.9702\n"
    (run / "dropout_study" / "dropout_results.csv").write_text(table + "dropout=0.0,0.0,diverged,\n")
    study, final = part("mnist_cnn_dropout").improved[0], part("mnist_cnn_final").improved[0]
    assert results.find(runs, "mnist_cnn", study) is None  # rate 0 did not finish its training
    (run / "dropout_study" / "dropout_results.csv").write_text(table + "dropout=0.0,0.0,completed,0.9665\n")
    assert results.find(runs, "mnist_cnn", study).value == pytest.approx(96.65)
    assert results.find(runs, "mnist_cnn", final) is None
    (run / "final").mkdir()
    (run / "final" / "metrics.json").write_text(json.dumps({"final": {"test_accuracy": 0.9956}}))
    assert results.find(runs, "mnist_cnn", final).value == pytest.approx(99.56)


def test_cifar_counts_a_run_of_every_part_and_reads_the_best_nets_folder(tmp_path):
    """`--part` only picks what runs: a run of all parts with the measure's other flags counts for `--part best`."""
    from apps.cifar_fc_net import Config

    runs = tmp_path / "runs"
    measures = part("cifar").improved
    assert measures[0].args[:2] == ("--part", "best")
    folder = write_run(runs, "cifar_fc_net", "seed0-all", Config, measures[0].args[2:])
    write_run(runs, "cifar_fc_net", "seed0-other", Config, ["--part", "best"])  # another --epochs: not this number
    assert results.latest(runs, "cifar_fc_net", measures)[1] is None  # the best net has not finished
    (folder / "best_final").mkdir()
    (folder / "best_final" / "metrics.json").write_text(json.dumps({"final": {"test_accuracy": 0.6853}}))
    _, found = results.latest(runs, "cifar_fc_net", measures)
    assert found.run == folder and found.value == pytest.approx(68.53)


def test_trigram_numbers_come_from_the_assignment_net_and_the_ensemble_of_their_own_runs(tmp_path):
    from apps.trigram_embedding import Config

    runs = tmp_path / "runs"
    order_free = write_run(runs, "trigram_embedding", "seed0-sum", Config, part("trigram_sum").assignment[0].args)
    default = write_run(runs, "trigram_embedding", "seed0-default", Config)
    for folder, accuracy in ((order_free, 0.3335), (default, 0.3759)):
        (folder / "D32_P256").mkdir()
        (folder / "D32_P256" / "metrics.json").write_text(json.dumps({"best": {"valid_accuracy": accuracy}}))
    assert results.latest(runs, "trigram_embedding", part("trigram_sum").assignment)[1].value == pytest.approx(33.35)
    assert results.latest(runs, "trigram_embedding", part("trigram").assignment)[1].value == pytest.approx(37.59)
    assert results.latest(runs, "trigram_embedding", part("trigram").improved)[1] is None
    ensemble = default / "D128_P1024_relu_adam_drop0.5_x3"
    ensemble.mkdir()
    (ensemble / "metrics.json").write_text(json.dumps({"scores": {"valid": {"accuracy": 0.4001}}, "row": {}}))
    _, found = results.latest(runs, "trigram_embedding", part("trigram").improved)
    assert found.run == default and found.value == pytest.approx(40.01)


def test_readme_block_keeps_recorded_values_and_is_rewritten_only_when_asked_or_complete(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "notmnist_mlp", "seed0-default", NotmnistMlpConfig, test_accuracy=0.9116)
    readme = tmp_path / "README.md"
    label = part("notmnist_cnn").label
    readme.write_text(
        f"intro\n{results.START}\n| assignment part | original | a | b | c | d |\n| --- |\n"
        f"| {label} | x | 93.48 % | 94.39 % | cmd | page |\n{results.END}\nrest\n"
    )
    before = readme.read_text()

    page, after = run_results(tmp_path, runs)
    assert after == before  # auto: most parts have no run here, so the README is left alone
    cnn = next(line for line in page.splitlines() if line.startswith(f"| {label}"))
    assert "93.48 %" in cnn and "94.39 %" in cnn  # recorded values carried over, and said to be recorded
    assert "value recorded in README.md" in page

    _, after = run_results(tmp_path, runs, "--update-readme", "always")
    block = after.split(results.START, 1)[1].split(results.END, 1)[0]
    assert after.startswith("intro\n") and after.endswith("rest\n")
    assert "| ECE421 part 1: notMNIST MLP, test accuracy | ≈ 90–92 % | 91.16 % |" in block
    assert f"| {label} | ≈ 92.5–93 % | 93.48 % | 94.39 % |" in block
    assert "| CS231n A2: CIFAR-10 best fully-connected net, test accuracy | 51.0 % | — | not run |" in block
    assert (tmp_path / "docs" / "results.png").stat().st_size > 0


def test_original_deltas():
    assert results.Original("r", 90.0, 92.0).delta(91.0) == 0.0
    assert results.Original("r", 90.0, 92.0).delta(93.0) == pytest.approx(1.0)
    assert results.Original("r", 90.0, 92.0).delta(89.5) == pytest.approx(-0.5)
    assert results.Original("v", 51.0).delta(68.7) == pytest.approx(17.7)
    assert results.Original("—").delta(50.0) is None


def test_every_part_names_a_page_and_a_command_the_app_accepts():
    for p in results.PARTS:
        assert (ROOT / "docs" / f"{p.app}.md").exists(), p.app
        for measure in (*p.assignment, *p.improved):
            results.expected_config(p.app, measure)  # the app's parser accepts the flags (exits otherwise)


# -- links in the documentation --------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(markdown):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


def _doc_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: p.name)
def test_every_relative_link_resolves(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    broken = []
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not checked here
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text()):
            broken.append(target)
    assert not broken, f"{doc.name}: broken links {broken}"
