"""The UIs tested as a person would (issue 18): Debian's chromium, headless, driven by playwright through
``executable_path`` (no browser download; ``infra/ci/install-chromium.sh`` installs it in CI).

A real stack on free ports: ``dojoflow ui`` (Prefect server + MLflow UI), ``dojoflow serve`` (the episode
deployment's runner) and a sweep of two episodes run through that deployment, one of whose tasks fails to
prepare while a marker file exists. The test opens the MLflow experiment (its runs table, the sweep's run with
its episodes nested, an episode's summary) and the Prefect flow runs (the logs and the summary artifact of
the completed episode; Retry on the failed one, which re-runs it to Completed once the outage is over), and
checks what is on the page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from task_copies import penguins_copy_failing_prepare

CHROMIUM = shutil.which("chromium")
BIN = Path(sys.executable).parent
pytestmark = [
    pytest.mark.slow, pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (infra/ci/install-chromium.sh)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, body: dict | None = None):
    request = urllib.request.Request(base + path, data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as reply:
        return json.loads(reply.read())


def _until(what: str, check, timeout_s: float = 240, every_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def stack(tmp_path):
    """UI servers, the deployment's runner, and a finished sweep with one failed episode."""
    home, tasks, marker = tmp_path / "home", tmp_path / "tasks", tmp_path / "store-down"
    penguins_copy_failing_prepare(tasks, "flaky-penguins", f"    if Path({str(marker)!r}).exists():\n"
                                                          "        raise OSError('raw data store unreachable')\n")
    marker.touch()
    prefect_port, mlflow_port = _free_port(), _free_port()
    prefect, mlflow = f"http://127.0.0.1:{prefect_port}", f"http://127.0.0.1:{mlflow_port}"
    env = {**os.environ, "DOJOFLOW_HOME": str(home), "DOJOFLOW_TASK_PATH": str(tasks),
           "PREFECT_API_URL": f"{prefect}/api"}
    env.pop("PREFECT_HOME", None)
    procs = []
    try:
        ui = subprocess.Popen([str(BIN / "dojoflow"), "ui", "--prefect-port", str(prefect_port), "--mlflow-port",
                               str(mlflow_port)], env={k: v for k, v in env.items() if k != "PREFECT_API_URL"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(ui)
        assert ui.stdout is not None
        seen: list[str] = []
        for line in ui.stdout:
            seen.append(line)
            if "Press Ctrl-C" in line:
                break
        assert "Press Ctrl-C" in "".join(seen), "".join(seen)[-3000:]
        procs.append(subprocess.Popen([str(BIN / "dojoflow"), "serve"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        _until("the served deployment", lambda: _api(prefect, "/api/deployments/filter",
                                                     {"deployments": {"name": {"any_": ["dojoflow"]}}}))
        sweep = tmp_path / "sweep.yaml"
        sweep.write_text("name: ui-test\nagents: [{name: baseline, options: {models: 1}}]\n"
                         "tasks: [penguins-body-mass, flaky-penguins]\nseeds: [0]\n"
                         "budget: {max_steps: 2, episode_timeout_s: 600}\n"
                         "retries: 0\ndeployment: episode/dojoflow\n")
        run = subprocess.run([str(BIN / "dojoflow"), "sweep", "run", str(sweep), "--json"], env=env,
                             capture_output=True, text=True, timeout=900)
        states = {s["task"]: s["state"] for s in json.loads(run.stdout)}
        assert run.returncode == 1 and states == {"penguins-body-mass": "completed", "flaky-penguins": "failed"}, \
            run.stderr[-3000:]
        marker.unlink()  # the outage is over: a Retry now succeeds
        yield {"prefect": prefect, "mlflow": mlflow, "home": home}
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _flow_run(prefect: str, name: str) -> dict:
    runs = _api(prefect, "/api/flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}})
    return max(runs, key=lambda r: r["created"])


def test_the_uis_show_episodes_failures_and_retry_works(stack):
    from playwright.sync_api import expect, sync_playwright

    prefect, mlflow = stack["prefect"], stack["mlflow"]
    good_key, bad_key = "ui-test--baseline--penguins-body-mass--s0", "ui-test--baseline--flaky-penguins--s0"
    experiment = _get(f"{mlflow}/api/2.0/mlflow/experiments/get-by-name?experiment_name=dojoflow")["experiment"]
    runs = _api(mlflow, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    by_name = {r["info"]["run_name"]: r["info"] for r in runs}
    assert {"sweep-ui-test", good_key, bad_key} <= set(by_name)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(90_000)
        expect.set_options(timeout=90_000)  # a loaded 2-core machine renders slowly

        # MLflow: the experiment opens on its runs table; the sweep's run nests its episodes. MLflow 3's
        # sidebar starts in its GenAI workflow in a fresh browser: a per-browser setting a person picks once
        # ("Model training"); tracking clients cannot set it (docs/ui.md).
        page.goto(f"{mlflow}/#/experiments")
        toggle = page.get_by_role("button", name="Model training")
        toggle.wait_for()
        toggle.click()
        page.goto(f"{mlflow}/#/experiments/{experiment['experiment_id']}")
        expect(page.get_by_text("sweep-ui-test").first).to_be_visible()
        # the parent's row starts collapsed ("3 matching runs", one row); its expander is the unnamed button in
        # the run-name cell, before the colour chip and the link
        page.get_by_role("gridcell", name=re.compile("sweep-ui-test")).get_by_role("button").first.click()
        expect(page.get_by_text(good_key).first).to_be_visible()
        # an episode's summary (its description) on its run page
        page.goto(f"{mlflow}/#/experiments/{experiment['experiment_id']}/runs/{by_name[good_key]['run_id']}")
        expect(page.get_by_text("HumanRank").first).to_be_visible()
        expect(page.get_by_text(re.compile("Ended:")).first).to_be_visible()

        # Prefect: the completed episode's logs (one line per step) and its summary artifact
        good = _flow_run(prefect, good_key)
        page.goto(f"{prefect}/runs/flow-run/{good['id']}")
        expect(page.get_by_text(re.compile(r"step 0/2 \| execute_code")).first).to_be_visible()
        # Prefect 3.8's tabs are list items of a tablist (not role=tab)
        page.get_by_role("tablist").get_by_role("listitem").filter(has_text=re.compile(r"^\s*Artifacts\s*$")).click()
        expect(page.get_by_text(f"episode-{good_key}").first).to_be_visible()

        # Retry on the failed episode re-runs it (the deployment's runner picks it up) to Completed
        bad = _flow_run(prefect, bad_key)
        assert bad["state_type"] == "FAILED"
        page.goto(f"{prefect}/runs/flow-run/{bad['id']}")
        page.get_by_role("button", name=re.compile(r"^\s*Retry\s*$")).first.click()
        page.get_by_role("dialog").get_by_role("button", name=re.compile(r"^\s*Retry\s*$")).click()
        _until("the retried episode to complete", lambda: _get(f"{prefect}/api/flow_runs/{bad['id']}")
               ["state_type"] == "COMPLETED", timeout_s=600, every_s=3)
        page.reload()
        expect(page.get_by_text("Completed").first).to_be_visible()
        browser.close()

    from dojoflow.storage.results import load_results

    row = load_results(stack["home"] / "results" / f"{bad_key}.parquet").iloc[0]
    assert row["status"] == "completed" and row["valid"]
