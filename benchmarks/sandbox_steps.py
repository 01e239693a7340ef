"""Latency of one realistic code step under each way of running it, measured in the same run.

The step imports pandas and scikit-learn and fits a LogisticRegression on 200x5 random data, then writes
``submission.csv`` (what an agent's step typically does). Rows:

- bare ``subprocess.run([python, "step.py"])``: no limits, no sandbox;
- ``LocalBackend`` and ``BwrapBackend``, cold: a new interpreter per step, as today;
- AIDE-style: a new Python process per execution (AIDE's documented ``Interpreter`` runs each execution in
  a fresh process, executing the code with ``exec`` and passing output back through a queue); written here
  from that description with ``multiprocessing``'s ``spawn`` context, so every step is a new interpreter;
- ``WarmBackend`` over ``bwrap`` (and ``local``): steps are forks of a worker that has already imported the
  libraries; its one-off start is shown separately.

And the fixed cost of bwrap: ``python -c pass`` bare vs. through ``BwrapBackend``. No assertions: figures
only. Run: ``.venv/bin/python benchmarks/sandbox_steps.py [--runs 7]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
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


# -- AIDE-style: one fresh interpreter per execution, code exec'd, output through a queue ----------------
class _QueueWriter(io.TextIOBase):
    def __init__(self, queue) -> None:
        self.queue = queue

    def write(self, text: str) -> int:
        self.queue.put(("out", text))
        return len(text)


def _aide_session(code: str, workspace: str, queue) -> None:
    import os

    os.chdir(workspace)
    writer = _QueueWriter(queue)
    with contextlib.redirect_stdout(writer), contextlib.redirect_stderr(writer):
        try:
            exec(compile(code, "runfile.py", "exec"), {"__name__": "__main__"})
            status = "ok"
        except BaseException:
            traceback.print_exc()
            status = "error"
    queue.put(("state", status))


def run_aide_style(code: str, workspace: Path, timeout: float) -> str:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_aide_session, args=(code, str(workspace), queue))
    proc.start()
    output, state, deadline = [], None, time.monotonic() + timeout
    while state is None and time.monotonic() < deadline:
        try:
            kind, value = queue.get(timeout=0.05)
        except Exception:
            if not proc.is_alive():
                break
            continue
        if kind == "state":
            state = value
        else:
            output.append(value)
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join()
    if state != "ok":
        raise RuntimeError(f"AIDE-style step failed: {''.join(output)[-500:]}")
    return "".join(output)


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
        results["AIDE-style (fresh interpreter per step)"] = measure(
            lambda: run_aide_style(STEP, ws, 60), runs)
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
        print(f"warm speed-up vs AIDE-style:    {med['AIDE-style (fresh interpreter per step)'] / med[warm_key]:5.1f}x")

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


if __name__ == "__main__":
    main()
