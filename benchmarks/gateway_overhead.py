"""What the LLM gateway adds to one chat completion, and what a command agent's sandbox costs to start.

1. Latency per call against the scripted OpenAI-compatible server (tests/scripted_llm_server.py, a real HTTP
   server on 127.0.0.1): direct (httpx to the server) vs through the gateway (httpx over its unix socket:
   parse, budget check, upstream call through LLMClient, accounting, two JSONL records) vs from inside a
   bwrap sandbox (the in-sandbox forwarder's loopback port -> unix socket -> gateway), same payload, same
   run. The baseline is the direct call.
2. A command agent's fixed cost: the agent-run step of an episode whose program is ``true`` (sockets,
   gateway, validation endpoint, bwrap with the MLE-bench mounts, the launcher), against a cold bwrap step
   running ``python -c pass``.

Run: ``.venv/bin/python benchmarks/gateway_overhead.py`` (prints medians; nothing is asserted).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DOJOFLOW_HOME", tempfile.mkdtemp(prefix="dojoflow-bench-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx  # noqa: E402

from dojoflow.llm.client import LLMClient  # noqa: E402
from dojoflow.llm.gateway import LLMGateway  # noqa: E402

from scripted_llm_server import ScriptedLLMServer  # noqa: E402

CALLS = 200
BODY = {"model": "m", "messages": [{"role": "user", "content": "say something " * 50}]}


def median_ms(fn, n: int = CALLS) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def calls() -> None:
    folder = Path(tempfile.mkdtemp(prefix="dojoflow-gwb-"))
    with ScriptedLLMServer(["a reply of a few words"]) as server:
        direct = httpx.Client()
        gateway = LLMGateway(LLMClient("m", server.base_url, cache=False), folder / "records")
        gateway.serve(folder / "llm.sock")
        via = httpx.Client(transport=httpx.HTTPTransport(uds=str(folder / "llm.sock")))
        try:
            d = median_ms(lambda: direct.post(f"{server.base_url}/chat/completions", json=BODY).raise_for_status())
            g = median_ms(lambda: via.post("http://gateway/v1/chat/completions", json=BODY).raise_for_status())
        finally:
            gateway.close()
            direct.close()
            via.close()
        inside = from_sandbox(server.base_url)
    shutil.rmtree(folder, ignore_errors=True)
    print(f"chat completion, median of {CALLS}: direct {d:.2f} ms; through the gateway {g:.2f} ms "
          f"({g - d:+.2f} ms); from inside a bwrap sandbox through forwarder and gateway {inside:.2f} ms "
          f"({inside - d:+.2f} ms)")


IN_SANDBOX = """
import json, os, statistics, time, urllib.request
body = json.dumps(BODY).encode()
times = []
for _ in range(CALLS):
    start = time.perf_counter()
    req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
    times.append(time.perf_counter() - start)
open("/home/logs/median_ms", "w").write(str(statistics.median(times) * 1000))
"""


def from_sandbox(base_url: str) -> float:
    from dojoflow.flows.config import EpisodeConfig
    from dojoflow.flows.episode import drive_episode

    agent = Path(tempfile.mkdtemp(prefix="dojoflow-gwa-"))
    (agent / "agent.py").write_text(f"BODY = {BODY!r}\nCALLS = {CALLS}\n" + IN_SANDBOX)
    command = {"command": "python agent.py", "agent_dir": str(agent), "model": "m", "base_url": base_url}
    result = drive_episode(EpisodeConfig(task_id="penguins-body-mass", agent="bench", sandbox="bwrap", track=False,
                                         wall_time_s=120, command=command))
    shutil.rmtree(agent, ignore_errors=True)
    return float((Path(result.episode_dir) / "logs" / "median_ms").read_text())


def startup() -> None:
    from dojoflow.flows.config import EpisodeConfig
    from dojoflow.flows.episode import drive_episode
    from dojoflow.infra.sandbox import ExecutionRequest, python_command
    from dojoflow.infra.sandbox.bwrap import BwrapBackend

    runs = []
    for _ in range(5):
        result = drive_episode(EpisodeConfig(task_id="penguins-body-mass", agent="true", sandbox="bwrap", track=False,
                                             wall_time_s=60, command={"command": "true"}))
        runs.append(result.timings["agent_run"])
    workspace = Path(tempfile.mkdtemp(prefix="dojoflow-bwb-"))
    (workspace / "s.py").write_text("pass\n")
    cold = []
    for _ in range(5):
        start = time.perf_counter()
        BwrapBackend().run(ExecutionRequest(python_command("s.py"), workspace))
        cold.append(time.perf_counter() - start)
    shutil.rmtree(workspace, ignore_errors=True)
    print(f"command agent `true`, agent-run step, median of 5: {statistics.median(runs) * 1000:.0f} ms; a cold bwrap "
          f"step `python s.py`: {statistics.median(cold) * 1000:.0f} ms")


if __name__ == "__main__":
    calls()
    startup()
