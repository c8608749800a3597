"""Run a sweep's trials on Ray: one actor per worker, each loading a base model once and running trial after
trial; a local Ray instance by default, an existing cluster with ``address`` (or ``$RAY_ADDRESS``).

Ray core actors, not Ray Tune: the trials are independent runs of a fixed grid (no search algorithm, no early
stopping across trials), each already resumable through its own run folder, and an actor is what keeps a loaded
model between trials. The driver (this process) owns the sweep table and hands the next trial to whichever
worker is free, preferring one that has the trial's base model loaded.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jola_lens.sweep.folder import SweepFolder, prepare_sweep_folder
from jola_lens.sweep.plan import TrialPlan
from jola_lens.sweep.spec import SweepFile, Trial, read_sweep, varying_settings
from jola_lens.sweep.table import SweepTable, TrialRow
from jola_lens.sweep.worker import TrialReport, TrialRunner, now

logger = logging.getLogger(__name__)

INSTALL = 'pip install "jola_lens[sweep]"   (or: pip install "ray[default]>=2.40")'
CONNECT_TIMEOUT_S = 5.0
"""How long to wait for a cluster's address to answer before giving up."""
POLL_S = 1.0


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the sweep; finished trials are kept and the same command resumes the others."""


class WorkerStartError(RuntimeError):
    """The sweep's Ray workers could not start (on a cluster: jola_lens missing on a node, ...)."""


@dataclass
class SweepResult:
    """How a sweep ended: its folder, the table's rows and counts, and where the time went."""

    folder: Path
    rows: list[TrialRow]
    counts: dict[str, int]
    workers: int
    startup_seconds: float
    seconds: float


def import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ImportError(f"`jola-lens sweep` runs its trials on Ray, which is not installed: {INSTALL}") from error
    return ray


def default_sweep_dir(sweep: SweepFile) -> Path:
    """runs/<sweep file name>: the same command finds the same sweep folder (and resumes it)."""
    return Path("runs") / sweep.path.stem


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """ConnectionError within about ``timeout`` seconds unless a Ray cluster's head answers at ``address``
    (HOST:PORT of its GCS, checked with a gRPC health check; ray://HOST:PORT of a Ray Client server, checked for
    a listening port; 'auto' is left to Ray)."""
    if address == "auto":
        return
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ValueError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, or ray://10.0.0.5:10001 for "
                         "Ray Client), nor 'auto'")
    hint = ("Start one there with `ray start --head --port PORT`, check the address, or leave --address (and "
            "$RAY_ADDRESS) out to run on this machine.")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(f"cannot reach a Ray cluster at {address} ({error}; waited at most {timeout:.0f} s). "
                              + hint) from None
    if address.startswith("ray://"):
        return
    answer = _health(f"{host}:{port}", timeout)
    if answer != "OK":
        raise ConnectionError(f"cannot reach a Ray cluster at {address}: something listens there but does not answer "
                              f"as a Ray head node (gRPC health check: {answer}). " + hint)


def _health(target: str, timeout: float) -> str:
    """The gRPC health check's answer at ``target`` ('OK', or the status code's name)."""
    import grpc

    with grpc.insecure_channel(target) as channel:
        try:
            channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=timeout)
        except grpc.RpcError as error:
            return error.code().name
    return "OK"


def connect(ray: Any, address: str | None, num_cpus: int) -> bool:
    """Join ``address`` or start a local Ray instance with ``num_cpus`` CPUs; True when this call started Ray
    (and so must shut it down). An already initialised Ray is used as it is."""
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        check_reachable(address)
        ray.init(address=address, **quiet)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **quiet)
    return True


def worker_count(ray: Any, requested: int | None, threads: int, gpus: float, n_trials: int) -> int:
    """Workers to start: ``requested``, else as many as the cluster's CPUs (and GPUs) hold; at most one per trial."""
    resources = ray.cluster_resources()
    cpus, total_gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if threads > cpus:
        raise ValueError(f"--threads_per_trial {threads} is more than the Ray cluster's {cpus:g} CPUs")
    if gpus > 0 and gpus > total_gpus:
        raise ValueError(f"--gpus_per_trial {gpus:g} but the Ray cluster has {total_gpus:g} GPU(s)")
    fit = int(cpus // threads)
    if gpus > 0:
        fit = min(fit, int(total_gpus / gpus + 1e-9))
    if requested is not None and requested > fit:
        logger.warning("--workers %d: only %d fit the cluster's resources at once; the others wait", requested, fit)
    return max(1, min(requested or fit, n_trials))


def run_sweep(sweep: SweepFile | str | os.PathLike, output_dir: str | os.PathLike | None = None, *,
              workers: int | None = None, threads_per_trial: int = 1, gpus_per_trial: float = 0.0,
              address: str | None = None, extend: bool = False, overwrite: bool = False, progress: bool = True,
              on_update: Callable[[SweepTable], None] | None = None,
              runs_dir: str | os.PathLike | None = None) -> SweepResult:
    """Run every unfinished trial of ``sweep`` (a sweep file or its path) into ``output_dir`` (default:
    runs/<sweep file name>) on Ray, and return the table.

    ``workers`` actors (default: as many as fit) each take ``threads_per_trial`` CPUs (torch threads) and
    ``gpus_per_trial`` GPUs (0.25 puts four trials on one GPU). ``address`` (default ``$RAY_ADDRESS``; none: a
    local Ray instance) joins an existing cluster; the sweep folder must then be on storage every node sees.
    Finished trials are skipped, interrupted ones resume from their checkpoints, failed ones run again. A sweep
    file whose trials changed is refused unless ``extend`` or ``overwrite``. ``on_update(table)`` is called after
    every rewrite of the table. ``runs_dir`` puts the trials' run folders there instead of ``<output_dir>/runs``
    (run folders already there with a trial's settings count as that trial, finished or resumable). Ctrl-C stops
    the workers and raises :class:`SweepInterrupted`.
    """
    start = time.monotonic()
    sweep = sweep if isinstance(sweep, SweepFile) else read_sweep(sweep)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"--workers must be a positive integer, got {workers!r}")
    if isinstance(threads_per_trial, bool) or not isinstance(threads_per_trial, int) or threads_per_trial < 1:
        raise ValueError(f"--threads_per_trial must be a positive integer, got {threads_per_trial!r}")
    if not gpus_per_trial >= 0:
        raise ValueError(f"--gpus_per_trial must be >= 0 (a fraction shares a GPU), got {gpus_per_trial!r}")
    address = address or os.environ.get("RAY_ADDRESS") or None
    ray = import_ray()
    folder = SweepFolder(output_dir if output_dir is not None else default_sweep_dir(sweep), runs_dir)

    def plan_of(trial: Trial) -> TrialPlan:
        return TrialPlan.build(trial, folder.run_dir(trial.name), folder.results_jsonl)

    trials = prepare_sweep_folder(folder, sweep, extend=extend, overwrite=overwrite,
                                  finished=lambda trial: plan_of(trial).finished())
    table = SweepTable(folder, trials, varying_settings([t.settings for t in trials], first=sweep.varying))
    todo = []
    for trial in trials:
        plan = plan_of(trial)
        if plan.finished():
            table.mark_done_earlier(plan.name, plan.run_dir)
        else:
            todo.append(plan)
    table.write()
    logger.info("sweep %s: %d trial(s), %d finished earlier, %d to run, in %s", sweep.path, len(trials),
                len(trials) - len(todo), len(todo), folder.root)
    if not todo:
        return SweepResult(folder.root, list(table.rows.values()), table.counts(), 0, 0.0, time.monotonic() - start)
    started_ray = connect(ray, address, num_cpus=workers * threads_per_trial if workers else os.cpu_count() or 1)
    try:
        n_workers = worker_count(ray, workers, threads_per_trial, gpus_per_trial, len(todo))
        pool = _Pool(ray, n_workers, threads_per_trial, gpus_per_trial)
        startup = time.monotonic() - start
        _schedule(ray, pool, todo, table, progress, on_update)
    finally:
        if started_ray:
            ray.shutdown()
    return SweepResult(folder.root, list(table.rows.values()), table.counts(), n_workers, startup,
                       time.monotonic() - start)


class _Pool:
    """The worker actors; a dead one is replaced by a fresh one."""

    def __init__(self, ray: Any, n: int, threads: int, gpus: float) -> None:
        self.ray = ray
        self.remote = ray.remote(TrialRunner).options(num_cpus=threads, num_gpus=gpus, max_restarts=0)
        self.threads = threads
        self.actors = [self.remote.remote(threads) for _ in range(n)]
        self.model_of: dict[Any, tuple] = {}
        try:
            ray.get([actor.ready.remote() for actor in self.actors])
        except Exception as error:
            self.stop()
            raise WorkerStartError(f"the sweep's Ray workers did not start ({error}); on a cluster, install jola_lens "
                               "on every node") from error

    def replace(self, actor: Any) -> Any:
        self.ray.kill(actor)
        fresh = self.remote.remote(self.threads)
        self.actors[self.actors.index(actor)] = fresh
        self.model_of.pop(actor, None)
        return fresh

    def stop(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


def _pick(pending: deque[TrialPlan], model: tuple | None) -> TrialPlan:
    """The next trial for a worker: the first one on the model it has loaded, else the first one."""
    for plan in pending:
        if plan.model_key == model:
            pending.remove(plan)
            return plan
    return pending.popleft()


def _schedule(ray: Any, pool: _Pool, todo: list[TrialPlan], table: SweepTable, progress: bool,
              on_update: Callable[[SweepTable], None] | None) -> None:
    from tqdm import tqdm

    pending = deque(todo)
    idle = list(pool.actors)
    running: dict[Any, tuple[Any, TrialPlan]] = {}
    bar = tqdm(total=len(table.rows), initial=len(table.rows) - len(todo), unit="trial", desc="sweep",
               disable=not progress, dynamic_ncols=True)

    def update(finished: int = 0) -> None:
        table.write()
        counts = table.counts()
        bar.set_postfix_str(f"done {counts['done']}, running {counts['running']}, failed {counts['failed']}",
                            refresh=not finished)
        bar.update(finished)
        if on_update is not None:
            on_update(table)

    try:
        while pending or running:
            while idle and pending:
                actor = idle.pop(0)
                plan = _pick(pending, pool.model_of.get(actor))
                pool.model_of[actor] = plan.model_key
                running[actor.run.remote(plan)] = (actor, plan)
                table.start(plan.name, now())
                update()
            ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            for ref in ready:
                actor, plan = running.pop(ref)
                try:
                    report = ray.get(ref)
                except ray.exceptions.RayActorError as error:
                    report = _failed(plan, f"the worker died ({error}); it was replaced")
                    actor = pool.replace(actor)
                except ray.exceptions.RayError as error:
                    report = _failed(plan, f"{type(error).__name__}: {error}")
                table.finish(report)
                if report.status == "failed":
                    logger.warning("trial %s failed: %s (log: %s)", plan.name, report.error,
                                   plan.run_dir / "trial.log")
                idle.append(actor)
                update(finished=1)
    except KeyboardInterrupt:
        for _, plan in running.values():
            table.interrupt(plan.name)
        table.write()
        counts = table.counts()
        raise SweepInterrupted(
            f"sweep stopped: {counts['done']} finished trial(s) kept in {table.folder.root}; "
            f"{counts['interrupted']} interrupted trial(s) resume from their last checkpoint when the same command "
            "runs again") from None
    finally:
        bar.close()
        pool.stop()


def _failed(plan: TrialPlan, error: str) -> TrialReport:
    return TrialReport(plan.name, "failed", "", now(), 0.0, "", error=error)
