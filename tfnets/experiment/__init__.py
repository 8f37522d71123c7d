"""The experiment framework: what every app does around its model (seed, run folder, training with
history/curves/metrics, report, export). `Experiment` is its front door; the modules of this package do the work:
`cli` (flags, one-line errors), `runs` (run folders, resumable `Run.fit`), `callbacks`, `sweep`/`tuner`/
`sweep_cluster`/`launch` (KerasTuner sweeps, also distributed), `distribute` and `determinism` (strategies, seeds,
XLA), `export`/`images` (SavedModels and user images), `report`/`plots`, `locks`, `quiet`, `lazy`.

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
import tempfile
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

    def __init__(self, config, title, get_config=None):
        """`config`: the app's `Config` (`tfnets.experiment.config.CommonConfig`); its `identity()` defines the run.

        (`get_config(args)` with an argparse namespace is the older form, kept only while apps move to `Config`.)
        """
        if get_config is not None:
            args = config
            if getattr(args, "quick", False) and "epochs" not in getattr(args, "_explicit", ()):
                args.epochs = min(args.epochs, 2)
            args.train_epochs = args.epochs
            identity = get_config(args)
            settings = {k: v for k, v in vars(args).items() if not k.startswith("_")}
            app = args.app
            export_dir = Path(args.export_dir) if args.export_dir else Path("saved_models") / app
        else:
            identity, settings, app, export_dir = config.identity(), config.settings(), config.APP, config.export_path
        self.args = config  # the settings of this command (a `Config`)
        self.app = app
        self.config = {"app": app, **identity}
        self._title = title
        self._export_dir = export_dir
        self._settings = settings
        self._entered = False
        if get_config is not None:
            self.__enter__()  # the older form is not used as a context manager: the command's end undoes it

    def __enter__(self):
        import keras

        from tfnets.experiment import distribute, locks
        from tfnets.experiment.runs import Run, run_id_for

        config = self.args
        self._restore = {
            "policy": keras.mixed_precision.global_policy().name,
            "determinism": determinism.op_determinism_enabled(),
            "locks": locks.held(),
        }
        self._entered = True
        # First: logical devices can only be made before TensorFlow's runtime starts.
        self.distribution = distribute.setup(
            getattr(config, "distribute", "none"),
            getattr(config, "devices", None),
            getattr(config, "precision", "float32"),
        )
        if config.batch_size:  # an early error; `train` checks the batch size each training really uses
            self.distribution.check_batch_size(config.batch_size)
        self.config["distribution"] = self.distribution.describe()
        self.jit = determinism.configure(config.seed, config.jit)
        run_id = config.run_id or run_id_for(self.config)
        run_path = Path(config.out) / self.app / run_id
        self.export_dir = self._export_dir
        # Recorded in config.json for the record (every setting as given), not part of the run's identity.
        record = {**self.config, "settings": self._settings}
        cluster_id = sweep_cluster.tuner_id()
        if self.distribution.is_chief:
            self.run = Run(run_path, record, cluster_id=cluster_id)
        else:
            # A non-chief worker computes everything the chief does, but its files go to a scratch folder of its
            # own: the run folder and the export have one writer. It resumes from the chief's checkpoint.
            scratch = Path(tempfile.mkdtemp(prefix=f"tfnets-worker{self.distribution.task_index}-"))
            self.run = Run(scratch / "run", record, read_from=run_path, cluster_id=cluster_id)
            self.export_dir = scratch / "export"
        self.report = Report(self.run.path / "report.md", self._title)
        print(f"run folder: {self.run.path}")
        if self.distribution.kind != "none" or "GPU" in self.distribution.devices[0].upper():
            print(
                f"training on {self.distribution.replicas} replica(s): {', '.join(self.distribution.devices)} "
                f"({self.distribution.kind}, {getattr(config, 'precision', 'float32')})"
            )
        # Models, optimizers and checkpoint restores of this command are made inside the strategy's scope.
        distribute.enter_scope(self.distribution)
        return self

    def __exit__(self, *exc):
        import keras

        from tfnets.experiment import distribute, locks

        if not self._entered:
            return False
        self._entered = False
        distribute.reset()
        keras.mixed_precision.set_global_policy(self._restore["policy"])
        determinism.set_op_determinism(self._restore["determinism"])
        locks.release_all(keep=self._restore["locks"])
        return False

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
        epochs = self.args.train_epochs if epochs is None else epochs
        batch_size = self.args.batch_size if batch_size is None else batch_size
        if steps_per_execution is None:
            steps_per_execution = getattr(self.args, "steps_per_execution", "epoch")
        seed = self.args.seed if seed is None else seed
        self.distribution.check_batch_size(batch_size)
        sweep_cluster.refuse_training_outside_trials(run)
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
            plot_curves(history, run.path / "curves.png", title or setting or self.app)
        run.write_history(history)
        return TrainResult(history, metrics, run)

    def export(self, model, **kwargs):
        """Export to `saved_models/<app>/` (or `--export-dir`); see `tfnets.experiment.export.export_model`."""
        from tfnets.experiment.export import export_model

        path = export_model(model, self.export_dir, extra={"app": self.app, "run": str(self.run.path)}, **kwargs)
        print(f"exported model: {path}")
        return path
