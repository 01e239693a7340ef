"""Latency of one realistic code step under each way of running it, measured in the same run.

The step imports pandas and scikit-learn and fits a LogisticRegression on 200x5 random data, then writes
``submission.csv`` (what an agent's step typically does). Rows:

- bare ``subprocess.run([python, "step.py"])``: no limits, no sandbox;
- ``LocalBackend`` and ``BwrapBackend``, cold: a new interpreter per step, as today;
- the real AIDE ``Interpreter`` (``aide/interpreter.py`` of the ``aideml`` package, installed into
  ``.cache/bench/`` by this script only, not a dojoflow dependency), run as AIDE's agent runs it: a fresh
  process per execution (``reset_session=True``) from a parent that has not imported the libraries;
- ``WarmBackend`` over ``bwrap`` (and ``local``): steps are forks of a worker that has already imported the
  libraries; its one-off start is shown separately.

- ``DockerBackend``, where a Docker-API engine answers and ``dojoflow-sandbox:latest`` is built
  (``infra/docker/engine.sh up``): a fresh container per step.

And the fixed cost of bwrap and docker: ``python -c pass`` bare vs. through each backend. No assertions:
figures only. Run: ``.venv/bin/python benchmarks/sandbox_steps.py [--runs 7] [--no-aide]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, get_backend, python_command
from dojoflow.infra.sandbox.bwrap import BwrapBackend, bwrap_available
from dojoflow.infra.sandbox.local import LocalBackend
from dojoflow.infra.sandbox.warm import WarmBackend

STEP = """\
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(200, 5)), columns=[f"f{i}" for i in range(5)])
y = (X.sum(axis=1) > 0).astype(int)
model = LogisticRegression().fit(X, y)
pd.DataFrame({"id": range(len(X)), "y": model.predict(X)}).to_csv("submission.csv", index=False)
print("accuracy", (model.predict(X) == y).mean())
"""
LIMITS = ExecutionLimits(timeout_s=60)


# -- the real AIDE Interpreter (aideml from the package index, installed for this benchmark only) --------
AIDE_VERSION = "0.2.2"
AIDE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "bench" / f"aideml-{AIDE_VERSION}"
AIDE_RUNNER = r"""
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("aide_interpreter", sys.argv[1])
interpreter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(interpreter)  # aide/interpreter.py itself (aide/__init__ pulls in the LLM clients)
session = interpreter.Interpreter(working_dir=sys.argv[2], timeout=120)
code = open(sys.argv[4]).read()
times = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    result = session.run(code, reset_session=True)  # as AIDE's agent runs every node
    times.append(time.perf_counter() - start)
    if result.exc_type is not None:
        sys.exit(f"AIDE step failed: {result.exc_type}: {''.join(result.term_out)[-500:]}")
session.cleanup_session()
print(json.dumps(times))
"""


def install_aide() -> Path:
    """Install AIDE (its interpreter module and the packages that module imports) under .cache/, once."""
    interpreter, done = AIDE_DIR / "aide" / "interpreter.py", AIDE_DIR / ".installed"
    if not done.is_file():
        pip = [sys.executable, "-m", "pip", "install", "-q", "--target", str(AIDE_DIR)]
        subprocess.run(pip + ["--no-deps", f"aideml=={AIDE_VERSION}"], check=True)
        # what interpreter.py imports (humanize, dataclasses-json) and what aide/utils imports on the way (shutup)
        subprocess.run(pip + ["humanize==4.8.0", "dataclasses-json==0.6.7", "shutup==0.2.0"], check=True)
        done.touch()
    return interpreter


def run_real_aide(workspace: Path, runs: int) -> list[float]:
    """Per-step seconds of AIDE's own Interpreter (a fresh process per execution, forked from a parent that
    has not imported the data-science libraries, as in AIDE's agent) running the same step."""
    interpreter = install_aide()
    env = {**os.environ, "PYTHONPATH": str(AIDE_DIR)}
    proc = subprocess.run([sys.executable, "-c", AIDE_RUNNER, str(interpreter), str(workspace), str(runs),
                           str(workspace / "step.py")], capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"the AIDE interpreter failed: {proc.stderr[-1000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- measuring ---------------------------------------------------------------------------------------------
def measure(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def backend_step(backend, workspace: Path, script: str = "step.py"):
    def step() -> None:
        result = backend.run(ExecutionRequest(python_command(script), workspace, None, LIMITS))
        if not result.ok:
            raise RuntimeError(f"{backend.name} step failed: {result.error or result.stderr[-500:]}")
    return step


def fmt(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:8.1f} ms   (min {min(times) * 1000:7.1f}, max {max(times) * 1000:7.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-aide", action="store_true", help="skip the real AIDE interpreter (installs aideml)")
    args = parser.parse_args()
    runs = args.runs
    ok, reason = bwrap_available()
    print(f"python {sys.version.split()[0]}; bwrap: {reason}")
    print(f"step: import pandas + scikit-learn, LogisticRegression on 200x5; median of {runs} runs\n")
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="dojoflow-bench-") as tmp:
        ws = Path(tmp) / "workspace"
        ws.mkdir()
        ws.chmod(0o755)
        (ws / "step.py").write_text(STEP)
        (ws / "pass.py").write_text("pass\n")

        results["bare subprocess (python step.py)"] = measure(
            lambda: subprocess.run([sys.executable, "step.py"], cwd=ws, check=True, capture_output=True), runs)
        results["local backend, cold"] = measure(backend_step(LocalBackend(), ws), runs)
        if ok:
            results["bwrap backend, cold"] = measure(backend_step(BwrapBackend(), ws), runs)
        docker = docker_backend()
        if docker is not None:
            results["docker backend, cold (a container per step)"] = measure(backend_step(docker, ws), runs)
        try:
            if not args.no_aide:
                results[f"real AIDE Interpreter (aideml {AIDE_VERSION})"] = run_real_aide(ws, runs)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
            print(f"real AIDE Interpreter unavailable here: {exc}")
        warm_start = {}
        for inner in (["bwrap"] if ok else []) + ["local"]:
            with WarmBackend(get_backend(inner)) as warm:
                warm_start[inner] = measure(backend_step(warm, ws, "pass.py"), 1)[0]  # starts the worker
                results[f"warm over {inner}"] = measure(backend_step(warm, ws), runs)

        print(f"{'how':45s} {'median':>11s}")
        for name, times in results.items():
            print(f"  {name:43s} {fmt(times)}")
        for inner, seconds in warm_start.items():
            print(f"  {'(one-off) warm worker start over ' + inner:43s} {seconds * 1000:8.1f} ms   "
                  "(once per episode: imports numpy, pandas, scipy, sklearn submodules)")

        med = {k: statistics.median(v) for k, v in results.items()}
        warm_key = "warm over bwrap" if ok else "warm over local"
        cold_key = "bwrap backend, cold" if ok else "local backend, cold"
        print()
        print(f"warm speed-up vs {cold_key}: {med[cold_key] / med[warm_key]:5.1f}x   (target >= 5x)")
        aide_key = f"real AIDE Interpreter (aideml {AIDE_VERSION})"
        if aide_key in med:
            print(f"warm speed-up vs the real AIDE Interpreter: {med[aide_key] / med[warm_key]:5.1f}x   "
                  "(target >= 20x, aim 30x)")

        print(f"\nfixed cost: python -c pass, median of {max(runs, 21)} runs")
        n = max(runs, 21)
        bare = measure(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), n)
        print(f"  {'bare subprocess':43s} {fmt(bare)}")
        if ok:
            bw = BwrapBackend()

            def bwrap_pass() -> None:
                r = bw.run(ExecutionRequest((sys.executable, "-c", "pass"), ws, None, LIMITS))
                assert r.ok, r.error or r.stderr
            sandboxed = measure(bwrap_pass, n)
            print(f"  {'BwrapBackend().run':43s} {fmt(sandboxed)}")
            overhead = (statistics.median(sandboxed) - statistics.median(bare)) * 1000
            print(f"  bwrap overhead: {overhead:.1f} ms   (target < 50 ms)")
        if docker is not None:
            in_docker = measure(backend_step(docker, ws, "pass.py"), n)
            print(f"  {'DockerBackend().run':43s} {fmt(in_docker)}")
            overhead = (statistics.median(in_docker) - statistics.median(bare)) * 1000
            print(f"  docker overhead: {overhead:.1f} ms   (create + start + attach + wait + remove)")


def docker_backend():
    """The docker backend where an engine answers and the sandbox image is built, else None (said why)."""
    try:
        from dojoflow.infra.sandbox.docker_backend import DEFAULT_IMAGE, DockerBackend, docker_available
    except ImportError as exc:
        print(f"docker backend unavailable: {exc}")
        return None
    ok, reason = docker_available()
    if ok:
        backend = DockerBackend()
        try:
            backend.client().images.get(DEFAULT_IMAGE)
            print(f"docker: {reason}")
            return backend
        except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound and the engine's other refusals
            reason = f"{DEFAULT_IMAGE} is not built (infra/docker/engine.sh build)"
    print(f"docker backend unavailable: {reason}")
    return None


if __name__ == "__main__":
    main()
