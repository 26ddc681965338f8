"""Run a command and report its wall time and the peak total RSS of its whole process tree.

Usage: python benchmarks/measure_run.py -- make run
Samples every 0.5 s with psutil (children included: Snakemake jobs, Dask workers).
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import psutil


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print(__doc__)
        return 2
    start = time.perf_counter()
    proc = subprocess.Popen(argv)
    peak = [0]

    def sample():
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [root] + root.children(recursive=True)
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.5)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    rc = proc.wait()
    t.join(timeout=2)
    wall = time.perf_counter() - start
    print(f"[measure_run] exit {rc}; wall {wall / 60:.1f} min ({wall:.0f} s); "
          f"peak RSS of the process tree {peak[0] / 2**30:.2f} GiB", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
