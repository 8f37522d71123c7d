"""The experiment framework: what every app does around its model (seed, run folder, training with
history/curves/metrics, report, export). `Experiment` is its front door; the modules of this package do the work:
`cli` (flags, one-line errors), `runs` (run folders, resumable `Run.fit`; `multi_worker`: its loop under
MultiWorkerMirroredStrategy), `callbacks` (resumable callbacks, their checkpointed state), `sweep`/`tuner`/
`sweep_cluster`/`launch` (KerasTuner sweeps, also distributed), `distribute` and `determinism` (strategies, seeds,
XLA), `export`/`images` (SavedModels and user images), `report`/`plots`, `locks`, `scratch` (a non-chief worker's
folder), `quiet`, `lazy`.

A typical app reads top to bottom as::

    args = parser.parse_args(argv)
    exp = Experiment(args, "notMNIST CNN", get_config)  # get_config(args): the fields that define a run
    data = load_notmnist(args.data_dir)
    model = build_model(...)
    result = exp.train(model, data)
    exp.export(model, class_names=data.class_names, input_shape=[28, 28, 1])

Importing this module loads no TensorFlow (apps import it before parsing their arguments); creating an
`Experiment` does.
"""

import dataclasses
import time
from pathlib import Path

from tfnets.experiment import determinism
from tfnets.experiment.plots import plot_curves
from tfnets.experiment.report import Report


@dataclasses.dataclass
class TrainResult:
    history: list
    metrics: dict
    run: "tfnets.experiment.runs.Run"  # noqa: F821 - imported lazily, with Keras

    @property
    def final(self):
        return self.metrics["final"]

    @property
    def best(self):
        return self.metrics["best"]


def _pair(data, split):
    x = getattr(data, f"x_{split}", None)
    y = getattr(data, f"y_{split}", None)
    return None if x is None or len(x) == 0 else (x, y)


class Experiment:
    """One invocation of an app: `runs/<app>/<run-id>/` plus `saved_models/<app>/`."""

    def __init__(self, args, title, get_config):
        """`get_config(args)`: the app's run configuration, the fields that define what a run computes (its run id
        hashes exactly these); called after `--quick` has capped the epochs."""
        if getattr(args, "quick", False) and "epochs" not in getattr(args, "_explicit", ()):
            # --quick is a smoke test of the whole pipeline: tiny real subset, at most two epochs.
            args.epochs = min(args.epochs, 2)
        self.args = args
        self.app = args.app
        self.config = {"app": args.app, **get_config(args)}
        from tfnets.experiment import distribute, scratch
        from tfnets.experiment.runs import Run, run_id_for

        # First: logical devices can only be made before TensorFlow's runtime starts.
        self.distribution = distribute.setup(
            getattr(args, "distribute", "none"), getattr(args, "devices", None), getattr(args, "precision", "float32")
        )
        if args.batch_size:  # an early error; `train` checks the batch size each training really uses
            self.distribution.check_batch_size(args.batch_size)
        self.config["distribution"] = self.distribution.describe()
        # Recorded in config.json for the record (every flag as given), not part of the run's identity.
        settings = {k: v for k, v in vars(args).items() if not k.startswith("_")}
        self.jit = determinism.configure(args.seed, args.jit)
        run_id = args.run_id or run_id_for(self.config)
        run_path = Path(args.out) / self.app / run_id
        self.export_dir = Path(args.export_dir) if args.export_dir else Path("saved_models") / self.app
        if self.distribution.is_chief:
            self.run = Run(run_path, {**self.config, "settings": settings})
        else:
            # A non-chief worker computes everything the chief does, but its files go to a scratch folder of its
            # own (removed when the command ends): the run folder and the export have one writer. It resumes from
            # the chief's checkpoint.
            folder = scratch.worker_folder(run_path, self.distribution.task_index)
            self.run = Run(folder / "run", {**self.config, "settings": settings}, read_from=run_path)
            self.export_dir = folder / "export"
        self.report = Report(self.run.path / "report.md", title, writing=self.run.writing)
        if self.distribution.is_chief:
            print(f"run folder: {self.run.path}")
        else:
            index = self.distribution.task_index
            print(
                f"worker {index}: worker 0 writes the run folder {run_path}; this worker's copy: {folder} (removed at exit)"
            )
        if self.distribution.kind != "none" or "GPU" in self.distribution.devices[0].upper():
            print(
                f"training on {self.distribution.replicas} replica(s): {', '.join(self.distribution.devices)} "
                f"({self.distribution.kind}, {getattr(args, 'precision', 'float32')})"
            )
        # Models, optimizers and checkpoint restores of this command are made inside the strategy's scope.
        distribute.enter_scope(self.distribution)

    def use_data(self, data, quick_train=300, quick_eval=200):
        """Record the dataset (source, sizes, provenance) in the report; under --quick return a seeded subset."""
        if getattr(self.args, "quick", False):
            data = data.subset(quick_train, quick_eval, seed=self.args.seed)
        sizes = data.sizes()
        lines = [f"- source: `{data.source}`", "- examples: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items())]
        if data.note:
            lines.append(f"- note: {data.note}")
        if data.skipped:
            lines.append(f"- unreadable files skipped: {data.skipped}")
        self.report.add("Data", "\n".join(lines))
        print("data: " + ", ".join(f"{k} {v}" for k, v in sizes.items()) + f" from {data.source}")
        return data

    def train(
        self,
        model,
        data,
        *,
        run=None,
        epochs=None,
        batch_size=None,
        setting="",
        shuffle=True,
        callbacks=(),
        title=None,
        eval_batch_size=1024,
        steps_per_execution=None,
        seed=None,
    ):
        """Fit `model` (compiled) on `data` (a `tfnets.data.Splits`), then evaluate every split.

        `seed` (default `--seed`) orders the batches of every epoch.

        Writes into `run` (default: this experiment's folder): history.csv, curves.png, metrics.json.
        `steps_per_execution` defaults to `--steps-per-execution` ("epoch"); see `Run.fit`.
        """
        run = run or self.run
        epochs = self.args.epochs if epochs is None else epochs
        batch_size = self.args.batch_size if batch_size is None else batch_size
        if steps_per_execution is None:
            steps_per_execution = getattr(self.args, "steps_per_execution", "epoch")
        seed = self.args.seed if seed is None else seed
        self.distribution.check_batch_size(batch_size)
        started = time.perf_counter()
        history = run.fit(
            model,
            _pair(data, "train"),
            _pair(data, "valid"),
            _pair(data, "test"),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            shuffle=shuffle,
            setting=setting,
            callbacks=callbacks,
            eval_batch_size=eval_batch_size,
            steps_per_execution=steps_per_execution,
        )
        splits = {name: _pair(data, name) for name in ("train", "valid", "test")}
        final = run.evaluate(model, {k: v for k, v in splits.items() if v is not None}, batch_size=eval_batch_size)
        # Epoch times survive a resume in the history; this process's own time covers the rest.
        trained = sum(row.get("time_s", 0.0) for row in history)
        metrics = run.write_metrics(final, history, max(trained, time.perf_counter() - started))
        if history:
            with run.writing():
                plot_curves(history, run.path / "curves.png", title or setting or self.app)
        run.write_history(history)
        return TrainResult(history, metrics, run)

    def export(self, model, **kwargs):
        """Export to `saved_models/<app>/` (or `--export-dir`); see `tfnets.experiment.export.export_model`."""
        from tfnets.experiment.export import export_model

        with self.run.writing():  # a full disk: the message says the re-run only evaluates and exports
            path = export_model(model, self.export_dir, extra={"app": self.app, "run": str(self.run.path)}, **kwargs)
        if self.distribution.is_chief:  # another worker's copy is no export of the user's
            print(f"exported model: {path}")
        return path
