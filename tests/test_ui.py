"""`dojoflow ui` starts both servers against dojoflow's stores and they answer on localhost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _answers(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            time.sleep(0.5)
    return False


def test_ui_commands_use_dojoflow_stores(settings):
    from dojoflow.ui import ui_commands

    commands = ui_commands(settings, 4201, 5001)
    assert commands["mlflow"][-6:] == ["--backend-store-uri", settings.tracking_uri, "--host", "127.0.0.1",
                                       "--port", "5001"]
    assert commands["prefect"][1:] == ["server", "start", "--host", "127.0.0.1", "--port", "4201"]


def test_ui_serves_prefect_and_mlflow(tmp_path):
    prefect_port, mlflow_port = _free_port(), _free_port()
    env = {**os.environ, "DOJOFLOW_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_HOME", None)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dojoflow"), "ui", "--prefect-port", str(prefect_port),
                             "--mlflow-port", str(mlflow_port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        assert _answers(f"http://127.0.0.1:{mlflow_port}/health", deadline)
        assert _answers(f"http://127.0.0.1:{prefect_port}/api/health", deadline)
        assert (tmp_path / "home" / "prefect").is_dir()  # Prefect's home is under the dojoflow home
        os.kill(proc.pid, signal.SIGKILL)  # only `dojoflow ui` itself: its servers must end with it
        proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_listening(prefect_port) or _listening(mlflow_port)):
            time.sleep(0.5)
        assert not _listening(prefect_port) and not _listening(mlflow_port), "servers outlived `dojoflow ui`"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
