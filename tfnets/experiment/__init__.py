"""The experiment framework: what every app does around its model (seed, run folder, training with
history/curves/metrics, report, export). `Experiment` is its front door; the modules of this package do the work:
`cli` (flags, one-line errors), `runs` (run folders, resumable `Run.fit`; `multi_worker`: its loop under
MultiWorkerMirroredStrategy), `callbacks` (resumable callbacks, their checkpointed state), `sweep`/`tuner`/
`sweep_cluster`/`launch` (KerasTuner sweeps, also distributed), `distribute` and `determinism` (strategies, seeds,
XLA), `export`/`images`/`glyph` (SavedModels with their calibration, user images, the no-glyph check),
`report`/`plots`, `locks`, `scratch` (a non-chief worker's folder), `quiet`, `lazy`.

A typical app reads top to bottom as::

    def run(config=None, **overrides):
        config = Config.make(config, **overrides)            # the app's declared configuration (`config.py`)
        with Experiment(config, "notMNIST CNN") as exp:       # seed, run folder, strategy; all put back on exit
            data = exp.use_data(load_notmnist(config.data_dir))
            model = build_model(...)
            result = exp.train(model, data)                   # a TrainResult: history, metrics, run folder
            exp.export(model, data=data, class_names=data.class_names, input_shape=[28, 28, 1])
            return result

Importing this module loads no TensorFlow (apps import it before parsing their arguments); creating an
`Experiment` does.
"""

import dataclasses
import time
from pathlib import Path

from tfnets.experiment import determinism, sweep_cluster
from tfnets.experiment.plots import plot_curves
from tfnets.experiment.report import Report


@dataclasses.dataclass
class TrainResult:
    """What one training gives back (a part, a sweep trial, an app's main model): its per-epoch `history`, the
    `metrics` its metrics.json holds, its `run` folder, the trained `model`, where it was exported (if it was) and,
    for an app's result, each part's own `TrainResult` by name."""

    history: list
    metrics: dict
    run: "tfnets.experiment.runs.Run"  # noqa: F821 - imported lazily, with Keras
    model: object = None
    export_path: Path = None
    parts: dict = dataclasses.field(default_factory=dict)

    @property
    def final(self):
        return self.metrics["final"]

    @property
    def best(self):
        return self.metrics["best"]

    @property
    def run_path(self):
        return self.run.path


def _pair(data, split):
    x = getattr(data, f"x_{split}", None)
    y = getattr(data, f"y_{split}", None)
    return None if x is None or len(x) == 0 else (x, y)


class Experiment:
    """One invocation of an app: `runs/<app>/<run-id>/` plus `saved_models/<app>/`.

    A context manager: on exit, error or not, it puts back every process-wide setting it changed (the strategy
    scope it entered, the mixed-precision policy, op determinism) and lets go of the folder locks it took, so one
    Python process can run one app after another.
    """

    def __init__(self, config, title):
        """`config`: the app's `Config` (`tfnets.experiment.config.CommonConfig`); its `identity()` defines the run.
        Nothing happens until the `with` block is entered."""
        self.settings = config  # this command's declared configuration (a `Config`)
        self.app = config.APP
        # What defines the run (its id hashes it); a part's run folder adds its own keys to it (`exp.run.child`).
        self.config = {"app": config.APP, **config.identity()}
        self._title = title
        self._export_dir = config.export_path
        self._entered = False

    def __enter__(self):
        import keras

        from tfnets.experiment import distribute, locks, scratch
        from tfnets.experiment.runs import Run, run_id_for

        config = self.settings
        self._restore = {
            "policy": keras.mixed_precision.global_policy().name,
            "determinism": determinism.op_determinism_enabled(),
            "locks": locks.held(),
        }
        self._entered = True
        # First: logical devices can only be made before TensorFlow's runtime starts.
        self.distribution = distribute.setup(
            config.distribute,
            config.devices,
            config.precision,
        )
        if config.batch_size:  # an early error; `train` checks the batch size each training really uses
            self.distribution.check_batch_size(config.batch_size)
        self.config["distribution"] = self.distribution.describe()
        self.jit = determinism.configure(config.seed, config.jit)
        run_id = config.run_id or run_id_for(self.config)
        run_path = Path(config.out) / self.app / run_id
        self.export_dir = self._export_dir
        # Recorded in config.json for the record (every setting as given), not part of the run's identity.
        record = {**self.config, "settings": config.settings()}
        cluster_id = sweep_cluster.tuner_id()
        if self.distribution.is_chief:
            self.run = Run(run_path, record, cluster_id=cluster_id)
        else:
            # A non-chief worker computes everything the chief does, but its files go to a scratch folder of its
            # own (removed when the experiment ends): the run folder and the export have one writer. It resumes from
            # the chief's checkpoint.
            folder = scratch.worker_folder(run_path, self.distribution.task_index)
            self.run = Run(folder / "run", record, read_from=run_path, cluster_id=cluster_id)
            self.export_dir = folder / "export"
        self.report = Report(self.run.path / "report.md", self._title, writing=self.run.writing)
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
                f"({self.distribution.kind}, {config.precision})"
            )
        # Models, optimizers and checkpoint restores of this command are made inside the strategy's scope.
        distribute.enter_scope(self.distribution)
        return self

    def __exit__(self, *exc):
        import keras

        from tfnets.experiment import distribute, locks, scratch

        if not self._entered:
            return False
        self._entered = False
        distribute.reset()
        scratch.remove_all()  # a non-chief worker's copy of the run
        keras.mixed_precision.set_global_policy(self._restore["policy"])
        determinism.set_op_determinism(self._restore["determinism"])
        locks.release_all(keep=self._restore["locks"])
        return False

    def use_data(self, data, quick_train=300, quick_eval=200):
        """Record the dataset (source, sizes, provenance) in the report; under --quick return a seeded subset."""
        if self.settings.quick:
            data = data.subset(quick_train, quick_eval, seed=self.settings.seed)
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
        epochs = self.settings.train_epochs if epochs is None else epochs
        batch_size = self.settings.batch_size if batch_size is None else batch_size
        if steps_per_execution is None:
            steps_per_execution = self.settings.steps_per_execution
        seed = self.settings.seed if seed is None else seed
        self.distribution.check_batch_size(batch_size)
        sweep_cluster.refuse_training_outside_plan(run)
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

    def export(self, model, *, data=None, calibration_model=None, export_dir=None, extra=None, **kwargs):
        """Export to `saved_models/<app>/` (or `--export-dir`, or `export_dir`); see
        `tfnets.experiment.export.export_model`.

        Given `data` (a `tfnets.data.Splits` in the inputs `calibration_model`, default `model`, takes), a classifier
        export is calibrated: one softmax temperature fitted on the validation split, stored in its metadata,
        and the report gets the NLL and expected calibration error of both splits before and after.
        """
        from tfnets.experiment.export import calibration_rows, describe_calibration, export_model

        path = Path(export_dir) if export_dir is not None else self.export_dir
        validation = _pair(data, "valid") if data is not None else None
        test = _pair(data, "test") if data is not None else None
        with self.run.writing():  # a full disk: the message says the re-run only evaluates and exports
            path = export_model(
                model,
                path,
                extra={"app": self.app, "run": str(self.run.path), **(extra or {})},
                validation=validation,
                test=test,
                calibration_model=calibration_model,
                **kwargs,
            )
        if not self.distribution.is_chief:  # another worker's copy is no export of the user's
            return path
        print(f"exported model: {path}")
        calibration = _read_calibration(path)
        if calibration:
            print(f"calibration: {describe_calibration(calibration)}")
            self.report.add_table(
                f"Calibration of the export `{path.name}`",
                calibration_rows(calibration),
                note=f"Temperature scaling (Guo et al. 2017): logits divided by T = {calibration['temperature']:.3f}, "
                "fitted on the validation split by minimising its cross-entropy (NLL); `python -m apps.predict` "
                "reports these calibrated probabilities (`--raw`: the model's own, T = 1). ECE: expected "
                f"calibration error over {calibration['ece_bins']} equal-width confidence bins. The predicted "
                "classes, and so the accuracies, do not change.",
            )
        return path


def _read_calibration(export_dir):
    import json

    return json.loads((Path(export_dir) / "metadata.json").read_text()).get("calibration")
