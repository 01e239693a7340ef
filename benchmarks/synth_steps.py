"""Step and episode cost on seed tasks vs their synthetic (procedural) and micro variants, in one run.

The same agents on each task: the baseline (``--models 1``: a linear model with 5-fold cross-validation;
``--models 2`` adds a 300-tree random forest, which on the full diamonds data exceeds the seeds' 120 s step
limit on a 2-core machine) and the ReAct scaffold with scripted replies from the scripted OpenAI-compatible
server (tests/scripted_llm_server.py: request_info, then the script the baseline would write for
``--react-model`` (default 2: histogram gradient boosting, 5-fold CV), then submit). Each seed gets one
procedural variant and one micro variant, generated and verified by ``dojoflow synth`` first (their
generation time is printed apart: it is paid once per task).

Printed per (seed, agent): median wall time of a code step and the episode's wall time on the seed, the
synthetic variant and the micro variant, and the ratios seed / variant. Run:

    .venv/bin/python benchmarks/synth_steps.py [--seeds diamonds-price,diamonds-cut] [--agents baseline,react]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HOME = Path(tempfile.mkdtemp(prefix="dojoflow-bench-synth-"))
os.environ.setdefault("DOJOFLOW_HOME", str(HOME))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from dojoflow.config import get_settings  # noqa: E402
from dojoflow.flows.episode import EpisodeConfig, drive_episode  # noqa: E402
from dojoflow.tasks_catalog.preparation import prepare_task  # noqa: E402
from dojoflow.tasks_catalog.registry import get_task  # noqa: E402


def scripted_react(task_id: str, settings, cache: Path, model_index: int):
    """A ReAct agent whose model is the scripted server: info, the random-forest script, submit."""
    from dojoflow.agents.baseline import write_script
    from dojoflow.agents.react import ReActAgent
    from dojoflow.dojo.env import MLEEnvironment

    from scripted_llm_server import ScriptedLLMServer, fenced

    env = MLEEnvironment(task_id, settings=settings, sandbox="local")
    info = env.reset()[0].data
    env.close()
    script = write_script(info, model_index, 0)

    def responder(body):
        seen = sum(m["role"] == "user" and m["content"].startswith("Observation:") for m in body["messages"])
        if seen == 0:
            return '{"type": "request_info"}'
        if seen == 1:
            return fenced(json.dumps({"type": "execute_code", "code": script}), "json")
        return '{"type": "submit"}'

    server = ScriptedLLMServer(responder).__enter__()
    agent = ReActAgent(model="gpt-4o-mini", base_url=server.base_url, cache_dir=str(cache))
    return agent, server


def measure(task_id: str, agent_name: str, settings, models: int, react_model: int) -> dict:
    """One episode; the median code-step wall time and the episode wall time."""
    server = None
    if agent_name == "react":
        agent, server = scripted_react(task_id, settings, HOME / "llm-cache" / f"{task_id}-{time.time_ns()}",
                                       react_model)
        config = EpisodeConfig(task_id=task_id, agent="react", max_steps=4, track=False)
    else:
        agent = None
        config = EpisodeConfig(task_id=task_id, max_steps=models + 2, track=False, agent_options={"models": models})
    try:
        started = time.perf_counter()
        result = drive_episode(config, settings=settings, agent=agent)
        wall = time.perf_counter() - started
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    steps = [s["duration_s"] for s in result.trajectory if s["action"]["type"] == "execute_code"]
    return {"step_s": statistics.median(steps) if steps else float("nan"), "episode_s": wall,
            "valid": result.valid, "steps": len(steps)}


def variants(seed: str, settings, dest: Path) -> dict[str, str]:
    """One kept procedural and one kept micro variant of ``seed`` (generated and verified now; a rejected
    candidate is followed by one from the next generation seed, at most three tries)."""
    from dojoflow.synth.pipeline import SynthOptions, synthesize

    out = {}
    for kind in ("procedural", "micro"):
        for generation_seed in range(3):
            started = time.perf_counter()
            report = synthesize(seed, SynthOptions(kind=kind, n=1, seed=generation_seed, dest=dest,
                                                   baseline_models=1), settings)
            reasons = "; ".join(r for c in report.candidates for r in c.reasons) or "all gates passed"
            print(f"  generated a {kind} variant of {seed} in {time.perf_counter() - started:.0f} s: {reasons}",
                  flush=True)
            if report.kept:
                out[kind] = report.kept[0]
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="diamonds-price,diamonds-cut")
    parser.add_argument("--agents", default="baseline,react")
    parser.add_argument("--models", type=int, default=1, help="baseline models: 1 linear, 2 + random forest")
    parser.add_argument("--react-model", type=int, default=2, help="the scripted ReAct script: 0 linear, "
                        "1 random forest, 2 gradient boosting")
    args = parser.parse_args()
    settings = get_settings()
    dest = HOME / "synthetic"
    os.environ["DOJOFLOW_TASK_PATH"] = str(dest)
    rows = []
    for seed in args.seeds.split(","):
        tasks = {"seed": seed, **variants(seed, settings, dest)}
        sizes = {}
        for label, task_id in tasks.items():
            prepared = prepare_task(get_task(task_id), settings.data_dir)
            sizes[label] = sum(1 for _ in (prepared.public / "train.csv").open()) - 1
        for agent in args.agents.split(","):
            results = {label: measure(task_id, agent, settings, args.models, args.react_model)
                       for label, task_id in tasks.items()}
            rows.append((seed, agent, sizes, results))
    print()
    print(f"{'seed':<16} {'agent':<9} {'variant':<11} {'train rows':>10} {'median step s':>14} {'episode s':>10} "
          f"{'step ratio':>11} {'episode ratio':>14} valid")
    for seed, agent, sizes, results in rows:
        base = results["seed"]
        for label, r in results.items():
            step_ratio = base["step_s"] / r["step_s"] if r["step_s"] else float("nan")
            episode_ratio = base["episode_s"] / r["episode_s"] if r["episode_s"] else float("nan")
            print(f"{seed:<16} {agent:<9} {label:<11} {sizes[label]:>10} {r['step_s']:>14.2f} {r['episode_s']:>10.1f} "
                  f"{step_ratio:>10.1f}x {episode_ratio:>13.1f}x {r['valid']}")
    print(f"\nmachine: {os.cpu_count()} cores; seeds measured: {args.seeds}; home {HOME}")


if __name__ == "__main__":
    main()
