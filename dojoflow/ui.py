"""``dojoflow ui``: the Prefect server and the MLflow UI as child processes on localhost.

Both read the same stores the episodes write to: Prefect's database under ``$DOJOFLOW_HOME/prefect`` and
MLflow's SQLite database and artifact directory under ``$DOJOFLOW_HOME``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from rich.console import Console

from dojoflow.config import Settings, configure_prefect_environment
from dojoflow.lifecycle import reap_on_exit

READY_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30


def _wait_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def ui_commands(settings: Settings, prefect_port: int, mlflow_port: int) -> dict[str, list[str]]:
    """The two server command lines (exposed for tests and for users who want to run them by hand)."""
    bin_dir = os.path.dirname(sys.executable)
    return {
        "prefect": [os.path.join(bin_dir, "prefect"), "server", "start", "--host", "127.0.0.1",
                    "--port", str(prefect_port)],
        "mlflow": [os.path.join(bin_dir, "mlflow"), "ui", "--backend-store-uri", settings.tracking_uri,
                   "--host", "127.0.0.1", "--port", str(mlflow_port)],
    }


def serve_uis(settings: Settings, prefect_port: int, mlflow_port: int, console: Console) -> None:
    """Start both servers, print their URLs, and stop them on Ctrl-C."""
    configure_prefect_environment(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    procs = {name: subprocess.Popen(cmd, env=os.environ.copy(), start_new_session=True) for name, cmd in
             ui_commands(settings, prefect_port, mlflow_port).items()}
    reap_on_exit(*(p.pid for p in procs.values()))  # they end with us, even after kill -9
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    urls = {"prefect": f"http://127.0.0.1:{prefect_port}", "mlflow": f"http://127.0.0.1:{mlflow_port}"}
    try:
        with console.status("starting the Prefect server and the MLflow UI..."):
            ready = {name: _wait_http(url + ("/api/health" if name == "prefect" else "/health"), READY_TIMEOUT_S)
                     for name, url in urls.items()}
        for name, url in urls.items():
            console.print(f"{name} UI: {url}" + ("" if ready[name] else "  (not answering yet; see its log above)"))
        console.print(f"To send new runs to this Prefect server: export PREFECT_API_URL={urls['prefect']}/api\n"
                      "Press Ctrl-C to stop.")
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
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


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_group(proc: subprocess.Popen, sig: int) -> None:
    """Signal the server and the workers it started (MLflow's gunicorn/uvicorn workers)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
