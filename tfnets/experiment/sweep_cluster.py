"""A cluster of processes sharing one command's trainings: KerasTuner's distributed mode (one chief, N workers).

KerasTuner decides a process's part from three environment variables, the same on every host:

    KERASTUNER_TUNER_ID     "chief" for the chief, any other unique name (tuner0, tuner1, ...) for a worker
    KERASTUNER_ORACLE_IP    where the chief listens (127.0.0.1 for one machine)
    KERASTUNER_ORACLE_PORT  its port

Every process runs the same command in the same folder. The chief serves the command's plan of trainings
(`tfnets.experiment.plan_cluster`) over gRPC and trains nothing; each worker asks it for a training, trains it into
its own run folder and reports back. When nothing is left, each of them prints one line and exits with status 0
instead of going on with the rest of the app; `tfnets-launch` then runs the command once more as a plain process,
which finds every training finished on disk and writes the tables, figures and exports once.

This module holds what the chief and workers share: who this process is, where the chief listens, how long a worker
waits for it, the chief's server loop. Importing it is cheap: gRPC and KerasTuner are imported only when a cluster
starts.
"""

import contextlib
import os
import time

from tfnets.errors import ConfigError, TfnetsError

CHIEF = "chief"
# How long a worker waits for the chief to answer one request (KerasTuner's own default is an hour). The chief may
# still be importing TensorFlow and loading the data when the workers first ask, so this is minutes, not seconds.
DEFAULT_ORACLE_TIMEOUT_S = 300
TIMEOUT_VARIABLE = "TFNETS_ORACLE_TIMEOUT"
WORKERS_VARIABLE = "TFNETS_WORKERS"
# The chief checks this often whether every trial has ended (KerasTuner's own loop sleeps 20 s between checks).
POLL_S = 0.5
_assigned = []  # the training the chief handed this worker, while it trains it


def tuner_id():
    """This process's `KERASTUNER_TUNER_ID` when it is part of a cluster, else None.

    Raises a one-line `ConfigError` when the variables are set only in part (KerasTuner would raise a
    RuntimeError deep inside the tuner)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    missing = [name for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} is not; a cluster "
            "needs all three (see docs/distributed.md)"
        )
    return os.environ["KERASTUNER_TUNER_ID"]


def is_chief():
    # KerasTuner's own rule: any id containing "chief".
    return CHIEF in (tuner_id() or "")


def address():
    return f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"


def oracle_timeout():
    text = os.environ.get(TIMEOUT_VARIABLE, str(DEFAULT_ORACLE_TIMEOUT_S))
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_VARIABLE} must be a positive number of seconds, got {text!r}")
    return value


def bound_client_timeout():
    """Make every request of this worker's `OracleClient` give up after `oracle_timeout()` seconds.

    The client sends each request with `wait_for_ready=True` and the module-level `TIMEOUT` (an hour) as deadline,
    read at call time: a worker whose chief is not there would otherwise sit silent for an hour.
    """
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = oracle_timeout()


def unreachable(err):
    """A one-line `TfnetsError` for a gRPC failure talking to the chief."""
    code = err.code().name if hasattr(err, "code") else type(err).__name__
    if code == "DEADLINE_EXCEEDED":
        return TfnetsError(
            f"{tuner_id()}: no answer from the cluster's chief at {address()} within "
            f"{oracle_timeout():g} s; start it (KERASTUNER_TUNER_ID=chief, same command) or check "
            f"KERASTUNER_ORACLE_IP/PORT ({TIMEOUT_VARIABLE} sets the wait)"
        )
    details = err.details() if hasattr(err, "details") else str(err)
    return TfnetsError(f"{tuner_id()}: the cluster's chief at {address()} failed: {code} {details}")


def expected_workers():
    """How many workers the chief waits to tell to stop before it exits: `TFNETS_WORKERS` (the launcher sets it),
    else 1. KerasTuner's chief counts only the workers that have asked: one that asks for the first time after the
    others emptied the plan would find no chief."""
    text = os.environ.get(WORKERS_VARIABLE, "1")
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{WORKERS_VARIABLE} must be a positive whole number of workers, got {text!r}")
    return int(text)


def serve(oracle, what):
    """Serve `oracle` (whose trials are `what`, for the message) to the workers until no trial is running and every
    worker was told to stop (`oracle.stopped`: the ids told so, at least `expected_workers()` of them).

    KerasTuner's `oracle_chief.start_server` does the same with a 20-second sleep between checks; this loop uses
    KerasTuner's servicer and protocol unchanged and only checks more often, and shuts the server down at the end.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    # gRPC turns on SO_REUSEPORT by default: a second chief on the same port would bind too and receive half of
    # the workers' requests. Without it the second one fails to bind and says so.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), options=[("grpc.so_reuseport", 0)])
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port(address())
    except RuntimeError:
        port = 0
    if port == 0:
        raise ConfigError(
            f"the cluster's chief cannot listen on {address()} (port in use, or not an address of "
            "this host); pick another KERASTUNER_ORACLE_PORT"
        )
    server.start()
    print(f"chief: serving {what} on {address()}", flush=True)
    try:
        workers = expected_workers()
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle) and len(oracle.stopped) >= workers):
            time.sleep(POLL_S)
    finally:
        server.stop(grace=1)


@contextlib.contextmanager
def assigned(name):
    """Around a worker's training of `name`, the one the chief handed it."""
    _assigned.append(name)
    try:
        yield
    finally:
        _assigned.pop()


def refuse_training_outside_plan(run):
    """In a cluster a process trains only what the chief hands it: anything else would be trained by every process.
    (An app declares its trainings in a `tfnets.experiment.plan.Plan`, which the chief serves.)"""
    if not _assigned and tuner_id() is not None:
        raise ConfigError(
            f"{tuner_id()}: this command trains {run.path} outside its plan, which a cluster cannot share; "
            "declare every training in the app's Plan (tfnets.experiment.plan)"
        )
