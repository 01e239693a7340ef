"""Rollout throughput for GRPO groups: G = 4, 8, 16 parallel rollouts, scripted policy, warm sandboxes.

Per group size: episodes per minute and environment steps per second of one timed group (after a warm-up
group that starts each worker's warm sandbox), and the harness's overhead:

- per step: time inside ``act()`` minus the code's own run time (as the sandbox measured it), per step;
  goal <= 20 ms;
- per episode: the rollout's wall time minus the code's run time (start, overview, grading, final grade,
  record), per episode; goal <= 0.5 s.

Baseline in the same run: G = 4 with a sandbox per episode (a warm worker started for each episode, what a
rollout without a slot does), against the slots that keep one warm sandbox per worker across episodes.
The policy is scripted (no generation time): 2 code steps (a scikit-learn model) and a submit per episode.
Run: ``.venv/bin/python benchmarks/rl_throughput.py [--sizes 4 8 16] [--task penguins-body-mass]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("DOJOFLOW_HOME", tempfile.mkdtemp(prefix="dojoflow-bench-"))

from dojoflow.config import get_settings  # noqa: E402
from dojoflow.rl.config import RolloutConfig  # noqa: E402
from dojoflow.rl.policy import ScriptedPolicy  # noqa: E402
from dojoflow.rl.rollout import Group, RolloutPool  # noqa: E402
from dojoflow.tasks_catalog.preparation import prepare_task  # noqa: E402
from dojoflow.tasks_catalog.registry import get_task  # noqa: E402


def figures(group: Group, wall: float) -> dict[str, float]:
    records = group.records
    steps = sum(r.steps for r in records)
    code_steps = sum(1 for r in records for _ in r.step_rewards[:-1]) or 1
    bad = [r.error or r.completion[1]["content"][-300:] for r in records if r.error or r.final_reward <= 0]
    if bad:
        raise SystemExit(f"rollouts failed: {bad[:3]}")
    return {
        "episodes_per_min": len(records) / wall * 60, "steps_per_s": steps / wall,
        "overhead_step_ms": 1000 * statistics.mean((r.act_time_s - r.code_time_s - r.startup_s) / max(r.steps, 1)
                                                   for r in records),
        "overhead_episode_s": statistics.mean(r.wall_s - r.code_time_s - r.startup_s for r in records),
        "startup_s": statistics.mean(r.startup_s for r in records),
        "code_s_per_step": statistics.mean(r.code_time_s / max(code_steps / len(records), 1) for r in records),
        "wall_s": wall,
    }


def measure(task: str, size: int, reuse: bool, config: RolloutConfig) -> dict[str, float]:
    policy = ScriptedPolicy(code_steps=2)
    with RolloutPool(size, reuse_sandboxes=reuse) as pool:
        pool.group(task, policy, size, base_seed=1000, config=config)  # warm-up: worker processes, sandboxes
        start = time.perf_counter()
        group = pool.group(task, policy, size, base_seed=0, config=config)
        return figures(group, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--task", default="penguins-body-mass")
    ns = parser.parse_args()
    prepare_task(get_task(ns.task), get_settings().data_dir)
    config = RolloutConfig(max_steps=4)
    print(f"GRPO group rollouts on {ns.task} (scripted policy: 2 code steps + submit; {os.cpu_count()} CPUs)")
    head = (f"{'':28} {'ep/min':>8} {'steps/s':>8} {'ovh/step':>10} {'ovh/episode':>12} {'startup':>8} "
            f"{'code/step':>10} {'wall':>7}")
    print(head)
    rows = [("baseline G=4 (sandbox/episode)", measure(ns.task, 4, False, config))]
    rows += [(f"G={g} (slots: warm reused)", measure(ns.task, g, True, config)) for g in ns.sizes]
    for name, f in rows:
        print(f"{name:28} {f['episodes_per_min']:8.1f} {f['steps_per_s']:8.2f} {f['overhead_step_ms']:8.1f}ms "
              f"{f['overhead_episode_s']:10.3f} s {f['startup_s']:7.2f}s {f['code_s_per_step'] * 1000:8.0f}ms "
              f"{f['wall_s']:6.1f}s")
    base, g4 = rows[0][1], rows[1][1]
    print(f"slots vs baseline at G=4: {g4['episodes_per_min'] / base['episodes_per_min']:.1f}x episodes/min; "
          f"goals: overhead/step <= 20 ms, overhead/episode <= 0.5 s (startup listed apart: paid once per worker "
          f"with slots, per episode in the baseline)")


if __name__ == "__main__":
    main()
