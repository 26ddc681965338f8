"""Snakemake's working-directory lock for ``xclusters run``: clear it when its run is dead.

Snakemake locks its working directory (``.snakemake/locks/``) and, after a ``kill -9``,
leaves the lock behind; the next run then stops until someone runs ``snakemake --unlock``.
Snakemake records no owner, so ``xclusters run`` writes one (:data:`OWNER_FILE`: pid, host,
start time, command) and, before starting, decides whether a lock is stale:

* the lock is *live* when a process other than this one and its parents has the working
  directory as its current directory and ``snakemake`` or ``xclusters`` in its command line
  (Snakemake itself, or a job it started that is still writing outputs), or when the owner
  file names a process on this host that is still running;
* the lock is *foreign* when the owner file names another host, whose processes cannot be
  seen from here;
* otherwise it is *stale*: it is removed with ``snakemake --unlock`` and a log line.

A live or foreign lock is refused, naming the run that holds it. ``xclusters run --unlock``
removes a lock by hand (still refused while a Snakemake process runs in the directory).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Sequence

from ..io import atomic_write_text

__all__ = ["OWNER_FILE", "RunLockedError", "lock_files", "live_processes", "read_owner",
           "clear_stale_lock", "unlock", "owned_run"]

log = logging.getLogger("xclusters.run")

#: Owner record of the run holding the lock, next to Snakemake's own bookkeeping.
OWNER_FILE = Path(".snakemake") / "xclusters-run-owner.json"


class RunLockedError(RuntimeError):
    """The working directory is locked by a run that is (or may be) still running."""


def lock_files(workdir: str | Path) -> list[Path]:
    """Snakemake's lock files in ``workdir`` (empty when unlocked)."""
    d = Path(workdir) / ".snakemake" / "locks"
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def _ancestors() -> set[int]:
    """This process and its parents (they share the working directory legitimately)."""
    pids, pid = {os.getpid()}, os.getppid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace").strip()
    except OSError:
        return ""


def _program_names(cmd: str) -> set[str]:
    """Base names of the programs a command line runs (its first words, ``-m`` modules and
    the words of a ``bash -c`` script), not of every path in it: a checkout that lives in a
    folder called ``xclusters`` must not make ``python -m pytest`` look like a run."""
    words = cmd.split()
    names = {os.path.basename(w) for w in words[:3]}
    if "-m" in words[:3]:
        names.add(words[words.index("-m") + 1] if words.index("-m") + 1 < len(words) else "")
    if len(words) > 2 and words[1] == "-c":
        names |= {os.path.basename(w.strip(";'\"")) for w in words[2:]}
    return names


def live_processes(workdir: str | Path, words: Sequence[str] = ("snakemake", "xclusters")
                   ) -> list[tuple[int, str]]:
    """Processes (not this one or its parents) running in ``workdir`` with one of ``words``.

    Reads ``/proc`` (Linux); returns ``[]`` where it is not available.
    """
    target = os.path.realpath(workdir)
    skip = _ancestors()
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            if os.path.realpath(os.readlink(entry / "cwd")) != target:
                continue
        except OSError:
            continue
        cmd = _cmdline(int(entry.name))
        if _program_names(cmd) & set(words):
            found.append((int(entry.name), cmd))
    return sorted(found)


def read_owner(workdir: str | Path) -> dict | None:
    """The owner record written by ``xclusters run``, or None."""
    try:
        return json.loads((Path(workdir) / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _describe(owner: dict | None) -> str:
    if not owner:
        return "a run without an owner record (plain snakemake?)"
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(owner.get("started", 0)))
    return (f"xclusters run pid {owner.get('pid')} on {owner.get('host')} started {started} "
            f"({' '.join(owner.get('argv', []))})")


def _holder(workdir: Path) -> str | None:
    """Why the lock of ``workdir`` is held by a live (or unknowable) run; None if stale."""
    owner = read_owner(workdir)
    live = live_processes(workdir)
    if live:
        procs = "; ".join(f"pid {pid}: {cmd[:120]}" for pid, cmd in live[:3])
        return f"{_describe(owner)}; live processes in {workdir}: {procs}"
    if owner and owner.get("host") != socket.gethostname():
        return (f"{_describe(owner)}: another host, whose processes cannot be checked from "
                f"here. If that run is dead, run `xclusters run --unlock` there or here")
    if owner and owner.get("pid") not in _ancestors() and _pid_alive(owner["pid"]):
        # a reused pid runs something else; without /proc the command cannot be read
        if (not Path("/proc").is_dir()
                or "xclusters" in _program_names(_cmdline(int(owner["pid"])))):
            return _describe(owner)
    return None


def clear_stale_lock(workdir: str | Path, snakemake_cmd: Sequence[str]) -> bool:
    """Remove Snakemake's lock in ``workdir`` if the run that held it is dead.

    Parameters
    ----------
    workdir : path
        Snakemake's working directory.
    snakemake_cmd : sequence of str
        The Snakemake command of this run (``--unlock`` is appended).

    Returns
    -------
    bool
        True when a stale lock was removed, False when there was none.

    Raises
    ------
    RunLockedError
        The lock belongs to a live run (or to one on another host), named in the message.
    """
    workdir = Path(workdir)
    locks = lock_files(workdir)
    if not locks:
        return False
    holder = _holder(workdir)
    if holder is not None:
        raise RunLockedError(f"{workdir} is locked by a running workflow: {holder}. Wait for "
                             "it to finish or stop it; this run was not started.")
    owner = read_owner(workdir)
    _run_unlock(snakemake_cmd)
    log.warning("removed the Snakemake lock in %s (%s) left by %s, which is no longer running",
                workdir / ".snakemake" / "locks", ", ".join(p.name for p in locks),
                _describe(owner))
    return True


def _run_unlock(snakemake_cmd: Sequence[str]) -> None:
    rc = subprocess.call(list(snakemake_cmd) + ["--unlock"], stdout=subprocess.DEVNULL)
    if rc:
        raise RunLockedError(f"`snakemake --unlock` failed (exit {rc}); remove "
                             ".snakemake/locks by hand after checking no run is alive")


def unlock(workdir: str | Path, snakemake_cmd: Sequence[str]) -> int:
    """``xclusters run --unlock``: remove the lock unless a Snakemake process is running."""
    workdir = Path(workdir)
    live = live_processes(workdir, words=("snakemake",))
    if live:
        raise RunLockedError(f"{workdir}: a Snakemake process is running here (pid "
                             f"{live[0][0]}: {live[0][1][:120]}); not unlocking")
    locks = lock_files(workdir)
    _run_unlock(snakemake_cmd)
    (workdir / OWNER_FILE).unlink(missing_ok=True)
    log.info("unlocked %s (%d lock files removed)", workdir, len(locks))
    return 0


class owned_run:
    """Context manager: the owner record of this ``xclusters run`` while it runs."""

    def __init__(self, workdir: str | Path, argv: Sequence[str]):
        self.path = Path(workdir) / OWNER_FILE
        self.record = {"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.time(), "argv": list(argv)}

    def __enter__(self):
        atomic_write_text(self.path, json.dumps(self.record))
        return self

    def __exit__(self, *exc):
        owner = read_owner(self.path.parent.parent)
        if owner and owner.get("pid") == self.record["pid"]:
            self.path.unlink(missing_ok=True)
        return False
