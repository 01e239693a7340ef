"""The warm sandbox's worker: imports the heavy libraries once, then runs each step in a fresh fork.

Run inside the sandbox as ``python warm_worker.py CTRL_FD SANDBOXED WORKSPACE PRELOAD_JSON`` (standard
library only: dojoflow is not importable there). The harness (``dojoflow.infra.sandbox.warm``) talks to it
over the SOCK_SEQPACKET socket ``CTRL_FD``, one JSON message per packet:

- worker -> harness: ``ready`` (with what was preloaded), then per step ``started`` (pid) and ``done``
  (exit status, timed out, killed, CPU seconds, peak RSS, duration);
- harness -> worker: ``run`` (script, args, timeout, rlimits, ``hold``) with the step's stdout and stderr
  pipes attached (``SCM_RIGHTS``); ``go`` to release a held child (the harness first moved it into the
  step's cgroup, which only the harness can do); and ``kill`` while a step runs (the output cap was passed).

Each step is a fork of the untouched worker, so module state never leaks between steps. The child starts
a new session, takes the step's rlimits, changes to the workspace and runs the script with
``runpy.run_path(..., run_name="__main__")``. The worker waits on a pidfd, so a child that blocks signals
is still killed at the deadline; afterwards it kills everything the step left (it is the children's
subreaper, and inside a PID namespace it also sends ``kill(-1)``) and, when sandboxed, empties ``/tmp`` and
``/dev/shm``.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import gc
import io
import json
import os
import runpy
import select
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

try:
    from dojoflow.infra.sandbox.inside import rlimits
except ImportError:  # run as a script inside the sandbox: the sibling file is on sys.path
    import rlimits  # type: ignore[no-redef]

MAX_MESSAGE = 1 << 16
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
UNEXPECTED_EXIT = 70  # EX_SOFTWARE: the child failed before or after running the script
MAX_REAP_ROUNDS = 1000
SCRATCH_DIRS = ("/tmp", "/dev/shm")


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def prctl(option: int, value: int) -> None:
    """``prctl(2)`` through libc; a no-op where libc cannot be loaded."""
    libc = _libc()
    if libc is None:
        return
    libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def exit_status(exc: BaseException | None) -> int:
    """The process exit status a plain ``python script.py`` would have after ``exc`` (None: success)."""
    if exc is None:
        return 0
    if isinstance(exc, SystemExit):
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code & 0xFF
        return 1
    return 1


def parent_pid(stat: str) -> int:
    """The parent pid field of a ``/proc/<pid>/stat`` line (the command name may hold spaces and ')')."""
    return int(stat[stat.rfind(")") + 2:].split()[1])


def children_of(pid: int, proc: str = "/proc") -> list[int]:
    """Pids whose parent is ``pid``."""
    out = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(f"{proc}/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        try:
            if parent_pid(stat) == pid:
                out.append(int(entry))
        except (ValueError, IndexError):
            continue
    return out


def empty_directory(path: str) -> None:
    """Remove everything inside ``path`` (not ``path`` itself); errors are ignored."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            try:
                os.unlink(full)
            except OSError:
                pass


def kill_tree_leader(pid: int) -> None:
    """SIGKILL the process group led by ``pid`` and ``pid`` itself."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def reap_all() -> None:
    """Collect every exited child without blocking."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_script(script: str, args: list[str]) -> int:
    """Run ``script`` as ``__main__`` in this process, as ``python script.py args`` would; its exit status."""
    sys.argv = [script] + list(args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    failure: BaseException | None = None
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        failure = exc
        if exc.code is not None and not isinstance(exc.code, int):
            try:
                print(exc.code, file=sys.stderr)
            except BaseException:
                pass
    except BaseException as exc:  # the script's own exception: print it as the interpreter would
        failure = exc
        try:
            traceback.print_exc()
        except BaseException:
            pass
    for finish in (getattr(threading, "_shutdown", None), getattr(atexit, "_run_exitfuncs", None)):
        try:
            if finish is not None:
                finish()
        except BaseException:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    return exit_status(failure)


def warm_up() -> None:
    """Run a tiny version of a typical step once, before any fork.

    The libraries import much of what a step uses lazily, on first call (pandas' CSV writer, pyarrow's
    compatibility layer, the dataframe interchange modules scikit-learn checks inputs with, the solvers of a
    fit); a step forked from a worker that never called them pays for that again every time (a 200-row
    LogisticRegression step: ~190 ms on a first call, ~70 ms after). Only libraries already preloaded are
    exercised, in memory (nothing is written), and a failure only means a slower first call in each step.
    """
    pd = sys.modules.get("pandas")
    np = sys.modules.get("numpy")
    if pd is None or np is None:
        return
    try:
        frame = pd.DataFrame(np.arange(60, dtype=float).reshape(20, 3), columns=["a", "b", "c"])
        frame["y"] = (frame["a"] % 2).astype(int)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        frame = pd.read_csv(io.StringIO(buffer.getvalue()))
        X, y = frame[["a", "b", "c"]], frame["y"]
        linear = sys.modules.get("sklearn.linear_model")
        if linear is not None:
            linear.LogisticRegression().fit(X, y).predict(X)
            linear.Ridge().fit(X, frame["a"]).predict(X)
        ensemble = sys.modules.get("sklearn.ensemble")
        if ensemble is not None:
            ensemble.RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y).predict_proba(X)
        selection = sys.modules.get("sklearn.model_selection")
        if selection is not None:
            selection.train_test_split(X, y, test_size=0.5, random_state=0)
    except Exception:  # noqa: BLE001 - an optimisation only
        pass


class Worker:
    """The serving loop; see the module docstring."""

    def __init__(self, ctrl_fd: int, sandboxed: bool, workspace: str, preload: list[str]) -> None:
        self.sock = socket.socket(fileno=ctrl_fd)
        self.sock.set_inheritable(False)
        self.sandboxed, self.workspace, self.preload = sandboxed, workspace, preload

    def send(self, **message: Any) -> None:
        """One JSON message to the harness."""
        self.sock.send(json.dumps(message).encode())

    def preload_modules(self) -> tuple[list[str], dict[str, str]]:
        """Import the preload list from the installation (never from the workspace)."""
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path[:] = [p for p in sys.path if p not in ("", ".", here)]
        loaded, failed = [], {}
        for name in self.preload:
            try:
                __import__(name)
                loaded.append(name)
            except Exception as exc:  # a missing optional library: report it, serve anyway
                failed[name] = f"{type(exc).__name__}: {exc}"
        return loaded, failed

    def child(self, request: dict[str, Any], out_fd: int, err_fd: int, go_fd: int | None) -> None:
        """In the forked child: wait to be released (when held), fresh streams, the step's limits, the script;
        never returns."""
        code = UNEXPECTED_EXIT
        try:
            if go_fd is not None and os.read(go_fd, 1) != b"g":  # the harness gave up on the step
                os._exit(code)
            os.setsid()
            self.sock.close()
            prctl(PR_SET_DUMPABLE, 1)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            for fd in (null, out_fd, err_fd):
                if fd > 2:
                    os.close(fd)
            sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="strict",
                                          write_through=True, line_buffering=False)
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                          errors="backslashreplace", write_through=True, line_buffering=True)
            sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr  # type: ignore[misc]
            rlimits.apply(request["limits"])
            numpy = sys.modules.get("numpy")
            if numpy is not None:  # a cold interpreter seeds numpy's global RNG from the OS; so must each fork
                numpy.random.seed()
            os.chdir(self.workspace)
            code = run_script(request["script"], list(request["args"]))
        finally:
            os._exit(code)

    def clean_up(self) -> None:
        """Kill everything the step left behind; when sandboxed also empty /tmp and /dev/shm."""
        if self.sandboxed:
            try:
                os.kill(-1, signal.SIGKILL)  # every process of this PID namespace but us and its init
            except OSError:
                pass
        me = os.getpid()
        for _ in range(MAX_REAP_ROUNDS):
            pids = children_of(me)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            for pid in pids:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
        reap_all()
        if self.sandboxed:
            for folder in SCRATCH_DIRS:
                empty_directory(folder)

    def run(self, request: dict[str, Any], out_fd: int, err_fd: int) -> bool:
        """One step; returns False when the harness went away (the worker then exits)."""
        start = time.monotonic()
        go_r, go_w = os.pipe() if request.get("hold") else (None, None)
        pid = os.fork()
        if pid == 0:
            if go_w is not None:
                os.close(go_w)
            self.child(request, out_fd, err_fd, go_r)
        os.close(out_fd)
        os.close(err_fd)
        if go_r is not None:
            os.close(go_r)
        self.send(op="started", pid=pid)
        pidfd = os.pidfd_open(pid)
        deadline = start + float(request["timeout_s"])
        timed_out = killed = harness_gone = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    kill_tree_leader(pid)
                    timed_out = True
                    break
                ready, _, _ = select.select([pidfd, self.sock.fileno()], [], [], remaining)
                if pidfd in ready:
                    break
                if self.sock.fileno() in ready:
                    data = self.sock.recv(MAX_MESSAGE)
                    if not data:
                        harness_gone = True
                        kill_tree_leader(pid)
                        break
                    op = _op(data)
                    if op == "go" and go_w is not None:
                        os.write(go_w, b"g")
                        os.close(go_w)
                        go_w = None
                    elif op == "kill":
                        kill_tree_leader(pid)
                        killed = True
                        break
            _, status, usage = os.wait4(pid, 0)
        finally:
            os.close(pidfd)
            if go_w is not None:
                os.close(go_w)
        duration = time.monotonic() - start
        kill_tree_leader(pid)
        self.clean_up()
        if harness_gone:
            return False
        self.send(op="done", status=os.waitstatus_to_exitcode(status), timed_out=timed_out, killed=killed,
                  cpu_s=usage.ru_utime + usage.ru_stime, maxrss_kb=usage.ru_maxrss, duration_s=duration)
        return True

    def serve(self) -> None:
        """Announce readiness, then run steps until the harness closes the socket."""
        prctl(PR_SET_DUMPABLE, 0)          # the step (same uid) may not ptrace the worker or read its memory
        prctl(PR_SET_CHILD_SUBREAPER, 1)   # orphans of a step are reparented here, so they can all be killed
        loaded, failed = self.preload_modules()
        warm_up()
        gc.collect()
        gc.freeze()  # the imported objects stay out of the children's collections: fewer copied pages per fork
        sys.stdout.flush()
        sys.stderr.flush()
        self.send(op="ready", pid=os.getpid(), loaded=loaded, failed=failed)
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 2)
            except InterruptedError:
                continue
            if not data:
                return
            if _op(data) != "run" or len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                continue
            if not self.run(json.loads(data), *fds):
                return


def _op(data: bytes) -> str | None:
    try:
        message = json.loads(data)
    except ValueError:
        return None
    return message.get("op") if isinstance(message, dict) else None


def main(argv: list[str]) -> None:
    """Entry point: ``CTRL_FD SANDBOXED(0/1) WORKSPACE PRELOAD_JSON``."""
    ctrl_fd, sandboxed, workspace, preload = int(argv[0]), argv[1] == "1", argv[2], json.loads(argv[3])
    os.set_inheritable(ctrl_fd, False)
    Worker(ctrl_fd, sandboxed, workspace, preload).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
