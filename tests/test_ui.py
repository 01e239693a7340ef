"""`dojoflow ui` starts both servers against dojoflow's stores and they answer on localhost."""

from __future__ import annotations

import json
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
    assert commands["mlflow"][2:4] == ["--workers", "1"]
    assert commands["mlflow"][-6:] == ["--backend-store-uri", settings.tracking_uri, "--host", "127.0.0.1",
                                       "--port", "5001"]
    assert commands["prefect"][1:] == ["server", "start", "--host", "127.0.0.1", "--port", "4201"]


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
def test_ui_serves_prefect_and_mlflow(tmp_path):
    prefect_port, mlflow_port = _free_port(), _free_port()
    # as a CI test runner passes it down: dojoflow's CI default (UI off) is in the environment it inherits
    env = {**os.environ, "DOJOFLOW_HOME": str(tmp_path / "home"), "CI": "true", "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_HOME", None)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dojoflow"), "ui", "--prefect-port", str(prefect_port),
                             "--mlflow-port", str(mlflow_port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        assert _answers(f"http://127.0.0.1:{mlflow_port}/health", deadline)
        assert _answers(f"http://127.0.0.1:{prefect_port}/api/health", deadline)
        assert (tmp_path / "home" / "prefect").is_dir()  # Prefect's home is under the dojoflow home
        # the Prefect UI (on, even under CI=true) calls the API on the port it was started on, not 4200
        with urllib.request.urlopen(f"http://127.0.0.1:{prefect_port}/ui-settings", timeout=30) as reply:
            assert json.loads(reply.read())["api_url"] == f"http://127.0.0.1:{prefect_port}/api"
        # ... and its pages are served (a disabled UI answers {"detail":"Not Found"} here)
        page = urllib.request.Request(f"http://127.0.0.1:{prefect_port}/runs/flow-run/0",
                                      headers={"Accept": "text/html"})
        with urllib.request.urlopen(page, timeout=30) as reply:
            assert b"<!DOCTYPE html>" in reply.read()
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


def test_a_taken_port_fails_at_once_with_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([str(Path(sys.executable).parent / "dojoflow"), "ui", "--prefect-port", str(port),
                               "--mlflow-port", str(_free_port())], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "DOJOFLOW_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2, proc.stderr
    assert f"port {port} for the prefect UI is taken" in proc.stderr and "--prefect-port" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
def test_sigterm_stops_both_servers_and_readiness_is_reported(tmp_path):
    prefect_port, mlflow_port = _free_port(), _free_port()
    env = {**os.environ, "DOJOFLOW_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_HOME", None)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "dojoflow"), "ui", "--prefect-port", str(prefect_port),
                             "--mlflow-port", str(mlflow_port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        ready = [line for line in lines if "(ready in" in line]
        assert len(ready) == 2, lines  # each server's readiness, with its time (figures: docs/ui.md)
        served = (tmp_path / "home" / "ui.json").read_text()
        assert str(prefect_port) in served and str(mlflow_port) in served  # episodes link to these
        proc.send_signal(signal.SIGTERM)  # the process only, as a service manager would
        proc.wait(timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_listening(prefect_port) or _listening(mlflow_port)):
            time.sleep(0.5)
        assert not _listening(prefect_port) and not _listening(mlflow_port), "servers outlived SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
