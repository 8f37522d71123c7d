"""Start a cluster that shares a command's trainings, or a multi-worker training cluster, on this machine, and wait.

    tfnets-launch --workers 2 -- python -m apps.notmnist_cnn --study all --epochs 10
    tfnets-launch --multi-worker 2 -- python -m apps.notmnist_mlp --distribute multi-worker --epochs 50

`tfnets-launch` is the installed script; `python -m tfnets.experiment.launch` is the same command.

`--workers N` runs the command's plan of trainings in KerasTuner's distributed mode (`tfnets.experiment.plan_cluster`):
one chief serving the plan (`KERASTUNER_TUNER_ID=chief`) and N workers (`tuner0` ... `tuner<N-1>`) on 127.0.0.1 and a
free port, each training whatever the chief hands it (a baseline, a search's trial, a part's final network) as soon as
what it needs has finished. Each stops with "no trainings left"; when all of them succeeded the launcher runs the
command once more as a plain process, which finds every training finished and writes the tables, figures and exports
once.

`--multi-worker N` starts N copies of the command, each with its own `TF_CONFIG` (one cluster of N workers on
127.0.0.1, worker i listening on its own free port), for `tf.distribute.MultiWorkerMirroredStrategy` training.

Either way every line a process prints comes out prefixed with its name (`[chief] ...`, `[tuner0] ...`,
`[worker1] ...`); if one process fails, the others are stopped (completed epochs and trainings are checkpointed, so
re-running the same launch resumes) and the launcher exits non-zero with one line. With N processes on one
machine each one gets `cpus // N` TensorFlow threads unless `--threads` or the variables are given.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from tfnets.experiment.cli import ArgumentParser, positive_int

SCRIPT = "tfnets-launch"  # the installed name (pyproject.toml's [project.scripts]), as torchrun is torch's
HOST = "127.0.0.1"
TF_THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS")
KERASTUNER_VARIABLES = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
STOP_GRACE_S = 15  # SIGTERM, then this long to write the interrupt line, then SIGKILL
# After the last worker ended the chief needs at most one poll and a server shutdown; longer means it waits for a
# worker that will never report (one the launcher did not start, or one that left without being told to stop).
CHIEF_GRACE_S = 30


class LaunchError(Exception):
    """A one-line reason the launch failed."""


def program_name():
    """How the user started the launcher: the installed script, or `python -m` (for usage lines and errors)."""
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return SCRIPT if script == SCRIPT else "python -m tfnets.experiment.launch"


def build_parser():
    parser = ArgumentParser(
        prog=program_name(),
        usage="%(prog)s (--workers N | --multi-worker N) [--port PORT] [--threads N] -- command [arguments ...]",
        description="Share a command's trainings among worker processes (--workers) or run it as a multi-worker "
        "training cluster (--multi-worker) on this machine; give the command after --.",
        epilog=f"example: {SCRIPT} --workers 2 -- python -m apps.notmnist_mlp --sweep learning_rate=0.01,0.1",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="one chief serving the command's trainings (KerasTuner's distributed mode) and N workers training them",
    )
    mode.add_argument(
        "--multi-worker",
        type=positive_int,
        metavar="N",
        help="N processes with TF_CONFIG each: one MultiWorkerMirroredStrategy cluster",
    )
    parser.add_argument(
        "--port", type=positive_int, default=None, help="the chief's port (--workers; default: a free one)"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="TensorFlow threads per training process (default: CPUs // N, unless TF_NUM_INTRAOP_THREADS is set)",
    )
    return parser


def parse_args(argv):
    """`[launcher flags] -- command...` -> (args, command). The launcher's own flags (`--help` among them) are
    parsed first, so that help is shown whether or not a command follows."""
    if "--" in argv:
        split = argv.index("--")
        args = build_parser().parse_args(argv[:split])
    else:
        build_parser().parse_known_args(argv)  # --help, and the launcher's own flag errors, before this one
        raise LaunchError(
            f"give the command to run after --, e.g. {SCRIPT} --workers 2 -- "
            "python -m apps.notmnist_mlp --sweep learning_rate=0.01,0.1"
        )
    command = argv[split + 1 :]
    if not command:
        raise LaunchError("the command after -- is empty")
    if args.port is not None and args.port > 65535:
        raise LaunchError(f"--port must be at most 65535, got {args.port}")
    if args.port is not None and args.multi_worker:
        raise LaunchError("--port is for --workers (the chief's port); --multi-worker picks free ports")
    return args, command


def free_ports(count):
    """`count` distinct ports that are free on 127.0.0.1 right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def available_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_env(threads):
    """TensorFlow/OpenMP thread counts for one process, unless the user set them."""
    return {name: str(threads) for name in TF_THREAD_VARIABLES if name not in os.environ}


def sweep_processes(n, port, threads):
    """[(name, extra environment)] for the chief and n workers."""
    common = {"KERASTUNER_ORACLE_IP": HOST, "KERASTUNER_ORACLE_PORT": str(port)}
    # The chief only answers requests: one thread is plenty, and leaves the cores to the workers.
    # The chief waits until all n workers were told to stop: one that asks late must still find it.
    chief = {**common, "KERASTUNER_TUNER_ID": "chief", "TFNETS_WORKERS": str(n), **thread_env(1)}
    processes = [("chief", chief)]
    processes += [
        (f"tuner{i}", {**common, "KERASTUNER_TUNER_ID": f"tuner{i}", **thread_env(threads)}) for i in range(n)
    ]
    return processes


def multi_worker_processes(n, ports, threads):
    cluster = {"worker": [f"{HOST}:{port}" for port in ports]}
    return [
        (
            f"worker{i}",
            {
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                **thread_env(threads),
            },
        )
        for i in range(n)
    ]


class Cluster:
    """Child processes whose output is streamed line by line with a `[name] ` prefix."""

    def __init__(self, out=None):
        self.out = out or sys.stdout.buffer
        self.write_lock = threading.Lock()
        self.procs = {}  # name -> Popen
        self.readers = []
        self.first_failed = None
        self.errors = {}  # name -> the text of its last "error: ..." line

    def say(self, text):
        self._write(f"[launch] {text}\n".encode())

    def _write(self, data):
        with self.write_lock:
            self.out.write(data)
            self.out.flush()

    def start(self, name, command, extra_env, base_env=None):
        env = dict(os.environ if base_env is None else base_env)
        env.update(extra_env)
        env["PYTHONUNBUFFERED"] = "1"  # lines as they happen, not when a 8 KiB buffer fills
        try:
            # Its own process group, so that stopping it stops whatever the command started too.
            proc = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as err:
            self.stop()
            raise LaunchError(f"cannot start {command[0]!r}: {err.strerror or err}") from None
        self.procs[name] = proc
        reader = threading.Thread(target=self._stream, args=(name, proc), daemon=True)
        reader.start()
        self.readers.append(reader)
        return proc

    def _stream(self, name, proc):
        prefix = f"[{name}] ".encode()
        for line in iter(proc.stdout.readline, b""):
            line = line.rstrip(b"\r\n")
            if line.startswith(b"error: "):  # the one-line reason a tfnets command failed
                self.errors[name] = line[len(b"error: ") :].decode(errors="replace")
            self._write(prefix + line + b"\n")
        proc.stdout.close()

    def running(self):
        return {name: proc for name, proc in self.procs.items() if proc.poll() is None}

    def signal_all(self, signum, names=None):
        for name, proc in self.running().items():
            if names is None or name in names:
                try:
                    os.killpg(proc.pid, signum)
                except ProcessLookupError:
                    pass

    def stop(self, names=None, grace=STOP_GRACE_S):
        """SIGTERM the running processes (`names`, default all); SIGKILL what is left after `grace` seconds."""
        self.signal_all(signal.SIGTERM, names)
        deadline = time.monotonic() + grace
        while any(names is None or n in names for n in self.running()) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.signal_all(signal.SIGKILL, names)
        for name, proc in self.procs.items():
            if names is None or name in names:
                proc.wait()

    def join_output(self):
        for reader in self.readers:
            reader.join(timeout=5)

    def wait(self, chief=None):
        """Wait until every process ended; stop the rest at the first failure. Returns {name: exit status}."""
        workers_done_at = None
        while True:
            codes = {name: proc.poll() for name, proc in self.procs.items()}
            failed = [name for name, code in codes.items() if code not in (None, 0)]
            if failed:
                self.first_failed = failed[0]  # before stopping the others, whose statuses say little
                self.stop()
                self.join_output()
                return {name: proc.returncode for name, proc in self.procs.items()}
            if all(code is not None for code in codes.values()):
                self.join_output()
                return codes
            if chief is not None and all(code is not None for name, code in codes.items() if name != chief):
                workers_done_at = workers_done_at or time.monotonic()
                if time.monotonic() - workers_done_at > CHIEF_GRACE_S:
                    self.stop()
                    self.join_output()
                    raise LaunchError(
                        f"every worker ended but the chief still waits for trainings after "
                        f"{CHIEF_GRACE_S} s; stopped it. Re-run the same launch to finish the trainings"
                    )
            time.sleep(0.1)


def describe(code):
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def launch(args, command, cluster):
    n = args.workers or args.multi_worker
    threads = args.threads or max(1, available_cpus() // n)
    if args.workers:
        port = args.port or free_ports(1)[0]
        processes = sweep_processes(n, port, threads)
    else:
        processes = multi_worker_processes(n, free_ports(n), threads)
    for name, extra in processes:
        cluster.start(name, command, extra)
    cluster.say(
        ", ".join(f"{name} pid {proc.pid}" for name, proc in cluster.procs.items())
        + (f"; oracle on {HOST}:{port}" if args.workers else "")
        + f"; {threads} TF thread(s) per worker"
    )
    codes = cluster.wait(chief="chief" if args.workers else None)
    if any(code != 0 for code in codes.values()):
        name = cluster.first_failed
        if name in cluster.errors:
            raise LaunchError(f"{name} failed: {cluster.errors[name]} (stopped the others)")
        raise LaunchError(
            f"{name} {describe(codes[name])}; stopped the others. Completed trials and epochs are "
            "checkpointed: re-run the same launch to resume"
        )
    if not args.workers:
        return 0
    cluster.say("every training done; writing the results with one plain run of the command")
    plain = {k: v for k, v in os.environ.items() if k not in KERASTUNER_VARIABLES}
    proc = cluster.start("final", command, {}, base_env=plain)
    proc.wait()
    cluster.join_output()
    if proc.returncode != 0:
        reason = f": {cluster.errors['final']}" if "final" in cluster.errors else f" {describe(proc.returncode)}"
        raise LaunchError(f"the final plain run failed{reason}")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    cluster = Cluster()
    interrupted = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            args, command = parse_args(argv)
        except LaunchError as err:
            print(f"error: {err} (see {program_name()} --help)", file=sys.stderr)
            return 2  # a usage error, like argparse's
        return launch(args, command, cluster)
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cluster.stop()
        cluster.join_output()
        print(
            "interrupted: stopped every process; completed trials and epochs are checkpointed, re-run the same "
            "launch to resume",
            file=sys.stderr,
        )
        return 128 + (interrupted[0] if interrupted else signal.SIGINT)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
