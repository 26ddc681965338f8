"""The benchmark scripts' bookkeeping (not the timings themselves, which need minutes)."""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` (a script directory, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}",
                                                  REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def build_images():
    return _load_benchmark("build_images")


def _run(workers, wall, work, other=0.0):
    return {"workers": workers, "wall": wall, "work": work, "n_ok": 10, "n": 10,
            "peaks_mb": [500.0] * workers, "other_load": other, "steal": 0.0,
            "startup": 3.0, "close": 1.0, "tail": 2.0, "busy": 0.9, "cpu_per": 7.0}


def test_shard_table_prints_measured_ratios(build_images, capsys):
    runs = [_run(1, 100.0, 96.0), _run(2, 50.0, 46.0, other=0.5),
            _run(1, 110.0, 104.0), _run(2, 60.0, 54.0)]
    build_images._print_shard(runs)
    out = capsys.readouterr().out
    assert "wall (mean of runs): 1.91x; best runs: 2.00x" in out  # 105/55, 100/50
    assert "work only (start-up and close excluded): 2.00x; best runs: 2.09x" in out
    assert "pair (wall): 2.00x, 1.83x" in out
    assert "2 worker(s)*" in out and "1 run(s) shared the machine" in out


def test_shard_table_without_both_worker_counts(build_images, capsys):
    build_images._print_shard([_run(1, 100.0, 96.0)])
    out = capsys.readouterr().out
    assert "1 worker(s)" in out and "speed-up" not in out


def test_timing_records_collects_run_shard_records(build_images):
    handler = build_images._TimingRecords()
    log = logging.getLogger("xclusters.parallel.test_benchmarks")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log.debug("no timing")
        log.debug("timing", extra={"xc_timing": {"start": 1.0, "end": 2.0}})
    finally:
        log.removeHandler(handler)
    assert handler.timings == [{"start": 1.0, "end": 2.0}]


def test_proc_stat_and_own_cpu(build_images):
    busy, steal = build_images._proc_stat()
    if busy != busy:  # no /proc/stat (not Linux)
        pytest.skip("/proc/stat is not readable here")
    assert busy > 0 and steal >= 0
    assert build_images._own_cpu() > 0


@pytest.fixture(scope="module")
def worker_overhead():
    return _load_benchmark("worker_overhead")


def test_worker_overhead_table_separates_cpu_and_waiting(worker_overhead, capsys):
    def run(mode, wall, cpus, walls, own):
        return {"mode": mode, "wall": wall, "own_cpu": own,
                "tasks": [{"cpu": c, "wall": w} for c, w in zip(cpus, walls)]}

    worker_overhead.print_table([
        run("serial", 100.0, [10.0, 10.0], [10.0, 10.0], 0.2),
        run("processes", 52.0, [10.0, 11.0], [10.2, 11.2], 0.4),
        run("dask", 60.0, [11.0, 11.0], [12.0, 11.5], 4.0),
        run("dask", 56.0, [11.0, 11.0], [11.5, 11.5], 3.0)])
    lines = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()[1:]}
    assert lines["serial"][3] == "1.00x"
    assert lines["processes"][3] == "1.92x" and lines["processes"][5] == "0.20"
    # dask: mean wall 58 -> 100/58; off-CPU (0.75 + 0.5) / 2; this process 3.5 s
    assert lines["dask"][1:] == ["2", "58.0", "1.72x", "11.00", "0.62", "3.5"]


def test_worker_overhead_rejects_unknown_mode(worker_overhead):
    with pytest.raises(ValueError, match="unknown mode 'threads'"):
        worker_overhead.run_mode("threads", [], {}, Path("/nonexistent/never-made"))
