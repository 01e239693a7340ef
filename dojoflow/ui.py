"""``dojoflow ui``: the Prefect server and the MLflow UI as child processes on localhost.

Both read the same stores the episodes write to: Prefect's database under ``$DOJOFLOW_HOME/prefect`` and
MLflow's SQLite database and artifact directory under ``$DOJOFLOW_HOME``.

- A port that is taken fails at once (exit 2, naming the port and the option to change it), before anything
  starts.
- MLflow runs with one worker (its default of four is most of a cold start, and a local UI needs one) and
  without its job runner (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: a runner plus several huey consumer
  processes for GenAI jobs such as scorers, which dojoflow's runs never use).
- Readiness is reported as it happens; a server not answering after ``READY_REPORT_S`` is named, with why
  (its process ended, with the tail of its log; or it is still starting); one that exits ends the command
  (exit 2).
- SIGTERM and Ctrl-C stop both servers (their whole process groups); ``kill -9`` of this process is covered
  by :func:`dojoflow.lifecycle.reap_on_exit`.
- Where they serve is written to ``$DOJOFLOW_HOME/ui.json`` so episodes link to these addresses
  (:mod:`dojoflow.links`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rich.console import Console

from dojoflow.config import Settings, configure_prefect_environment
from dojoflow.errors import ServiceError, UsageError
from dojoflow.lifecycle import reap_on_exit

READY_REPORT_S = 15  # a server not answering by then is named, with why
READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
MLFLOW_WORKERS = "1"
PORT_OPTIONS = {"prefect": "--prefect-port", "mlflow": "--mlflow-port"}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def check_ports_free(ports: dict[str, int]) -> None:
    """Refuse at once when a port is taken (the server would fail to bind after a long start)."""
    for name, port in ports.items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                raise UsageError(f"port {port} for the {name} UI is taken ({exc.strerror}): stop what uses it or "
                                 f"choose another with {PORT_OPTIONS[name]}") from None


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n  ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) or "(no output)"
    except OSError:
        return "(no log)"


def ui_commands(settings: Settings, prefect_port: int, mlflow_port: int) -> dict[str, list[str]]:
    """The two server command lines (exposed for tests and for users who want to run them by hand)."""
    bin_dir = os.path.dirname(sys.executable)
    return {
        "prefect": [os.path.join(bin_dir, "prefect"), "server", "start", "--host", "127.0.0.1",
                    "--port", str(prefect_port)],
        "mlflow": [os.path.join(bin_dir, "mlflow"), "ui", "--workers", MLFLOW_WORKERS, "--backend-store-uri",
                   settings.tracking_uri, "--host", "127.0.0.1", "--port", str(mlflow_port)],
    }


def serve_uis(settings: Settings, prefect_port: int, mlflow_port: int, console: Console) -> None:
    """Start both servers, report when each answers (or why not), and stop both on Ctrl-C or SIGTERM."""
    from dojoflow.links import write_served

    check_ports_free({"prefect": prefect_port, "mlflow": mlflow_port})
    configure_prefect_environment(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    logs = {name: Path(tempfile.mkstemp(prefix=f"dojoflow-ui-{name}-", suffix=".log")[1]) for name in PORT_OPTIONS}
    # the dashboard is what this command is for: an inherited PREFECT_UI_ENABLED=false (dojoflow's own default
    # under CI=true, passed down to every child process) would leave an API that answers {"detail":"Not Found"}
    env = {**os.environ, "PREFECT_UI_ENABLED": "true"}
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    # Prefect's UI finds its API at the server's configured port (4200), not at the --port it was started with
    env.setdefault("PREFECT_UI_API_URL", f"http://127.0.0.1:{prefect_port}/api")
    procs = {name: subprocess.Popen(cmd, env=env, start_new_session=True,
                                    stdout=logs[name].open("w"), stderr=subprocess.STDOUT)
             for name, cmd in ui_commands(settings, prefect_port, mlflow_port).items()}
    reap_on_exit(*(p.pid for p in procs.values()))  # they end with us, even after kill -9
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    urls = {"prefect": f"http://127.0.0.1:{prefect_port}", "mlflow": f"http://127.0.0.1:{mlflow_port}"}
    health = {"prefect": urls["prefect"] + "/api/health", "mlflow": urls["mlflow"] + "/health"}
    try:
        _wait_ready(procs, health, urls, logs, console)
        write_served(settings, urls["prefect"], urls["mlflow"])
        console.print(f"To send new runs to this Prefect server: export PREFECT_API_URL={urls['prefect']}/api\n"
                      "Press Ctrl-C to stop.")
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
        ended = next(name for name, p in procs.items() if p.poll() is not None)
        raise ServiceError(f"the {ended} server stopped (exit status {procs[ended].returncode}); its last "
                           f"output:\n  {_tail(logs[ended])}")
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        for proc in procs.values():
            _stop_group(proc, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _stop_group(proc, signal.SIGKILL)
                proc.wait()


def _wait_ready(procs: dict[str, subprocess.Popen], health: dict[str, str], urls: dict[str, str],
                logs: dict[str, Path], console: Console) -> None:
    """Print each UI's URL as it answers; after ``READY_REPORT_S`` say which is not answering and why; a
    server that exits while starting is an error with its output."""
    started = time.monotonic()
    waiting, reported = set(procs), False
    while waiting:
        for name in sorted(waiting):
            if _answers(health[name]):
                console.print(f"{name} UI: {urls[name]}  (ready in {time.monotonic() - started:.1f} s)")
                waiting.discard(name)
            elif procs[name].poll() is not None:
                raise ServiceError(f"the {name} server exited while starting (exit status {procs[name].returncode});"
                                   f" its last output:\n  {_tail(logs[name])}")
        elapsed = time.monotonic() - started
        if waiting and not reported and elapsed > READY_REPORT_S:
            reported = True
            for name in sorted(waiting):
                console.print(f"[yellow]{name} UI not answering after {READY_REPORT_S} s[/yellow]: its process is "
                              f"running but still starting (a cold start on a loaded machine); its log so far:\n  "
                              f"{_tail(logs[name], 3)}\nwaiting up to {READY_TIMEOUT_S} s")
        if waiting and elapsed > READY_TIMEOUT_S:
            raise ServiceError(f"{', '.join(sorted(waiting))} did not answer within {READY_TIMEOUT_S} s; last "
                               "output:\n  " + "\n  ".join(_tail(logs[n]) for n in sorted(waiting)))
        if waiting:
            time.sleep(0.25)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the server and the workers it started (MLflow's gunicorn/uvicorn workers)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
