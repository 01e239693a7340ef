"""Environment overhead per ``execute_code`` step: direct (plain Python) vs inside the Prefect episode flow.

Overhead = everything except the agent code's own run: the marginal wall time of one more step, minus
the sandbox-measured run time of the step's code (which includes starting its interpreter). Measured as
``(T(N steps) - T(1 step)) / (N - 1) - mean code run time`` so that per-episode costs (data prep, final
grading, integrity re-run, recording) cancel out. Same task, same trivial code, same machine, same run.
Run: ``.venv/bin/python benchmarks/env_overhead.py``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

os.environ.setdefault("DOJOFLOW_HOME", tempfile.mkdtemp(prefix="dojoflow-bench-"))

from dojoflow.config import configure_prefect_environment, get_settings  # noqa: E402

configure_prefect_environment(get_settings())

from prefect import flow  # noqa: E402

from dojoflow.dojo.actions import Action  # noqa: E402
from dojoflow.flows.episode import PLAIN_STEPS, EpisodeConfig, drive_episode  # noqa: E402
from dojoflow.flows.prefect_episode import PREFECT_STEPS  # noqa: E402

TASK = "penguins-body-mass"
CODE = "import shutil\nshutil.copy('data/sample_submission.csv', 'submission.csv')\n"
STEPS = 12


class RepeatAgent:
    """Runs the same trivial code ``n`` times, then submits."""

    name = "repeat"

    def __init__(self, n: int) -> None:
        self.n, self.done, self.last_step_info = n, 0, {}

    def reset(self, observation, seed) -> None:
        """A new episode."""
        self.done = 0

    def act(self, observation) -> Action:
        """The code ``n`` times, then submit."""
        self.done += 1
        return Action("execute_code", code=CODE) if self.done <= self.n else Action("submit")


def episode_seconds(steps, n: int) -> tuple[float, float]:
    """(wall time of an episode with n code steps, mean code run time per step)."""
    config = EpisodeConfig(task_id=TASK, max_steps=n + 1, track=False)
    start = time.perf_counter()
    result = drive_episode(config, steps, agent=RepeatAgent(n))
    wall = time.perf_counter() - start - result.sandbox_startup_s  # the warm worker starts once per episode
    runs = [s["execution"]["duration_s"] for s in result.trajectory if s.get("execution")]
    return wall, statistics.mean(runs)


@flow(name="bench-episode", persist_result=False)
def flowed(n: int) -> tuple[float, float]:
    return episode_seconds(PREFECT_STEPS, n)


def overhead(run) -> float:
    run(1)  # warm-up (data prep, imports, Prefect's API)
    t1, _ = run(1)
    tn, code = run(STEPS)
    return (tn - t1) / (STEPS - 1) - code


def main() -> None:
    direct = overhead(lambda n: episode_seconds(PLAIN_STEPS, n))
    prefect = overhead(flowed)
    print(f"environment overhead per execute_code step ({STEPS} steps, task {TASK}):")
    print(f"  direct (MLEEnvironment):    {direct * 1000:7.1f} ms")
    print(f"  inside the Prefect flow:    {prefect * 1000:7.1f} ms  ({prefect / direct:.1f}x direct; "
          f"+{(prefect - direct) * 1000:.0f} ms for the execution + feedback-grading + agent-step tasks)")


if __name__ == "__main__":
    main()
