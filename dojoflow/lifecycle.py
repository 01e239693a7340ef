"""Servers dojoflow starts end with the process that started them, even after ``kill -9``.

``dojoflow ui`` starts a Prefect server and the MLflow UI; any Prefect-using command may start Prefect's
ephemeral API server. A killed parent would leave them running, re-parented to PID 1 and holding their
ports. :func:`reap_on_exit` starts a tiny watcher process (standard library only) that waits on the
parent's pidfd and, when the parent is gone for any reason, terminates the given processes (SIGTERM, then
SIGKILL after a grace period; a process that leads its own process group is signalled with its group, so
workers it started go too).
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

GRACE_S = 5.0

WATCHER = r'''
import os, select, signal, sys, time
parent, grace, pids = int(sys.argv[1]), float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
try:
    fd = os.pidfd_open(parent)
    select.select([fd], [], [])
except OSError:  # no pidfd (old kernel) or the parent is already gone: poll
    while True:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
        time.sleep(1)
for sig in (signal.SIGTERM, signal.SIGKILL):
    alive = []
    for pid in pids:
        try:
            os.killpg(pid, sig)  # a server that leads its own group, with its workers
        except OSError:
            pass
        try:
            os.kill(pid, sig)
            alive.append(pid)
        except ProcessLookupError:
            pass
    pids = alive
    deadline = time.time() + grace
    while pids and time.time() < deadline:
        pids = [p for p in pids if os.path.exists(f"/proc/{p}") and
                not open(f"/proc/{p}/stat").read().split(")")[-1].split()[0] == "Z"]
        time.sleep(0.1)
'''


def reap_on_exit(*pids: int, parent: int | None = None, grace_s: float = GRACE_S) -> subprocess.Popen:
    """Terminate ``pids`` when ``parent`` (default: this process) exits; returns the watcher process."""
    return subprocess.Popen([sys.executable, "-c", WATCHER, str(parent or os.getpid()), str(grace_s),
                             *map(str, pids)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def tie_prefect_ephemeral_server() -> None:
    """Make Prefect's ephemeral API server (a uvicorn subprocess Prefect starts on first use) end with
    this process. Prefect starts it with ``subprocess.Popen`` in ``prefect.server.api.server``; that module
    gets a copy of :mod:`subprocess` whose ``Popen`` also starts a watcher for the new process."""
    import types

    from prefect.server.api import server as prefect_server

    if getattr(prefect_server.subprocess, "_dojoflow_reaped", False):
        return
    real_popen = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen:
        proc = real_popen(*args, **kwargs)
        reap_on_exit(proc.pid)
        return proc

    proxy = types.SimpleNamespace(**vars(subprocess))
    proxy.Popen = popen
    proxy._dojoflow_reaped = True
    prefect_server.subprocess = proxy  # type: ignore[assignment]
