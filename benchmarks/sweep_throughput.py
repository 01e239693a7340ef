"""What a sweep episode costs beyond its agent's code: sweeps of trivial episodes, with 1 and 2 slots.

Each episode is the baseline agent (one model) on ``penguins-body-mass`` with a budget of 2 steps
(request_info, one code step, then the budget ends it), run through the real stack: embedded Prefect
(one flow run per episode under the sweep's concurrency limit), MLflow on SQLite, the local artifact
store, the default warm sandbox. For each setting it prints:

- episodes per minute;
- per episode: wall time in the sweep, of which the agent's code (the sandbox-measured run time of its
  steps, the integrity re-run included), the sandbox start-up (the warm worker importing pandas and
  scikit-learn once per episode, in place of every step paying it), and the **orchestration** (everything
  else: Prefect, data-prep, grading, integrity bookkeeping, tracking, artifacts, the sweep itself);
- the seconds each DAG task spends, so a regression shows where it happened.

A first, unmeasured sweep warms the caches (Prefect's server, prepared data, imports), as a researcher's
second sweep of the day would find them. Run: ``.venv/bin/python benchmarks/sweep_throughput.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("DOJOFLOW_HOME", tempfile.mkdtemp(prefix="dojoflow-bench-"))

from dojoflow.config import configure_prefect_environment, get_settings  # noqa: E402

configure_prefect_environment(get_settings())

from dojoflow.flows.prefect_sweep import sweep_states  # noqa: E402
from dojoflow.flows.sweep_spec import parse_sweep_spec  # noqa: E402
from dojoflow.storage.results import load_results  # noqa: E402
from dojoflow.storage.trajectory import read_trajectory  # noqa: E402

EPISODES = int(sys.argv[1]) if len(sys.argv) > 1 else 20
DAG = ("data_prep", "agent_step", "execution", "feedback_grading", "final_grading", "integrity_check", "record")


def sweep(name: str, slots: int, episodes: int) -> float:
    spec = parse_sweep_spec({"name": name, "agents": [{"name": "baseline", "options": {"models": 1}}],
                             "tasks": ["penguins-body-mass"], "seeds": episodes, "budget": {"max_steps": 2},
                             "concurrency": {"episodes": slots}, "retries": 0})
    start = time.perf_counter()
    states = sweep_states(spec.to_dict())
    wall = time.perf_counter() - start
    failed = [s for s in states if s["state"] != "completed"]
    if failed:
        raise SystemExit(f"{len(failed)} episodes did not complete: {failed[0]}")
    return wall


def measure(slots: int) -> dict[str, float]:
    name = f"bench-{slots}slot-{int(time.time())}"
    wall = sweep(name, slots, EPISODES)
    settings = get_settings()
    rows = load_results(settings.results_dir)
    rows = rows[rows["sweep_id"] == name]
    code, startup, timings = [], [], {k: [] for k in DAG}
    for episode_id in rows["episode_id"]:
        header, steps = read_trajectory(settings.episodes_dir / episode_id / "trajectory.jsonl")
        code_s = sum((s.get("execution") or {}).get("duration_s", 0.0) for s in steps)
        code_s += header["integrity"].get("rerun", {}).get("duration_s", 0.0)
        code.append(code_s)
        startup.append(header.get("sandbox_startup_s", 0.0))
        for k in DAG:
            timings[k].append(header["timings"].get(k, 0.0))
    per_episode = wall * slots / len(rows)
    mean_code, mean_startup = statistics.mean(code), statistics.mean(startup)
    print(f"{slots} slot(s): {len(rows)} episodes in {wall:.1f} s = {60 * len(rows) / wall:.1f} episodes/min")
    print(f"  per episode (slot-seconds): {per_episode:.2f} s = agent code {mean_code:.2f} s + sandbox start-up "
          f"{mean_startup:.2f} s + orchestration {per_episode - mean_code - mean_startup:.2f} s")
    print("  DAG tasks (mean s per episode): " + ", ".join(f"{k} {statistics.mean(v):.3f}" for k, v in timings.items()))
    in_dag = sum(statistics.mean(v) for v in timings.values())
    print(f"  outside the DAG tasks (flow runs, concurrency slots, the sweep): {per_episode - in_dag:.2f} s")
    return {"per_episode": per_episode, "orchestration": per_episode - mean_code - mean_startup}


if __name__ == "__main__":
    sweep(f"bench-warmup-{int(time.time())}", 1, 2)
    for slots in (1, 2):
        measure(slots)
