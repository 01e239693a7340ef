"""The gymnasium API: ``DojoflowEnv`` wraps :class:`~dojoflow.dojo.env.MLEEnvironment`.

    import gymnasium as gym
    import dojoflow.dojo.gym_env  # registers "dojoflow/<task-id>" for every registered task

    env = gym.make("dojoflow/breast-cancer", max_steps=8)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step({"type": "execute_code", "code": "..."})

Actions are accepted in three forms: an :class:`~dojoflow.dojo.actions.Action`; a dict or JSON string
with a string ``type`` (the form LLM agents produce, optionally with ``"usage": {"tokens": .., "cost_usd":
..}`` to charge the cost budget); or a sample of :attr:`action_space` (``type`` as an index into
:data:`ACTION_TYPES`, ``step = -1`` meaning "the best by feedback").

Observations are dicts: ``text`` (what an LLM reads), ``kind`` (index into :data:`OBSERVATION_KINDS`) and
``steps_left``; the structured fields (feedback score, HumanRank, validity, errors with type, message and
likely causes) are in ``info["observation"]``.

Documented exception to gymnasium's checks: step outcomes depend on running real code (wall time, peak
memory and any nondeterminism of the agent's code appear in the observation), so the registered specs
are marked ``nondeterministic=True`` and ``check_env`` skips its step-determinism check. Reset is
deterministic.
"""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dojoflow.config import Settings
from dojoflow.dojo.actions import ACTION_TYPES
from dojoflow.dojo.env import MLEEnvironment
from dojoflow.dojo.feedback import DEFAULT_FEEDBACK, feedback_protocol
from dojoflow.dojo.obfuscation import ORIGINAL, description_variant
from dojoflow.dojo.observation import Observation
from dojoflow.errors import EpisodeStateError

OBSERVATION_KINDS = ("info", "history", "validate_code", "execute_code", "submitted", "error")
MAX_TEXT = 1_000_000


class UnicodeText(spaces.Text):
    """Text of any Unicode characters (gymnasium's ``Text`` only admits its sampling charset).

    Samples are drawn from the default alphanumeric charset; ``contains`` admits any string of an
    admissible length, since observations hold arbitrary program output.
    """

    def contains(self, x: Any) -> bool:
        """Any string of an admissible length."""
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length


class DojoflowEnv(gym.Env):
    """One agent on one task; see the module docstring for the spaces and the action forms."""

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, task: str = "breast-cancer", *, max_steps: int = 10, reward_mode: str = "human_rank",
                 sandbox: str | None = None, settings: Settings | None = None, wall_time_s: float | None = None,
                 cost_budget_usd: float | None = None, render_mode: str | None = None,
                 agent_name: str = "gym", feedback: str = DEFAULT_FEEDBACK, description: str = ORIGINAL) -> None:
        self.task, self.max_steps, self.reward_mode = task, max_steps, reward_mode
        self.description = description_variant(description)  # the contamination probe's variant (dojo/obfuscation.py)
        self.feedback = feedback_protocol(feedback).name  # checked now: a bad name fails at construction
        self.agent_name = agent_name  # recorded in the trajectory, for export filters
        self.sandbox, self.settings = sandbox, settings
        self.wall_time_s, self.cost_budget_usd = wall_time_s, cost_budget_usd
        self.render_mode = render_mode
        self.action_space = spaces.Dict({
            "type": spaces.Discrete(len(ACTION_TYPES)),
            "code": UnicodeText(max_length=MAX_TEXT, min_length=1),
            "step": spaces.Discrete(max_steps + 1, start=-1),
        })
        self.observation_space = spaces.Dict({
            "text": UnicodeText(max_length=MAX_TEXT, min_length=0),
            "kind": spaces.Discrete(len(OBSERVATION_KINDS)),
            "steps_left": spaces.Discrete(max_steps + 1),
        })
        self.inner: MLEEnvironment | None = None
        self._last: Observation | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start a new episode (a fresh workspace); ``options={"task": ID}`` switches the task."""
        super().reset(seed=seed)
        if options and "task" in options:
            self.task = options["task"]
        agent_seed = int(self.np_random.integers(2**31 - 1)) if seed is None else seed
        if self.inner is not None:
            self.inner.close()
        self.inner = MLEEnvironment(self.task, seed=agent_seed, max_steps=self.max_steps,
                                    reward_mode=self.reward_mode, sandbox=self.sandbox, settings=self.settings,
                                    wall_time_s=self.wall_time_s, cost_budget_usd=self.cost_budget_usd,
                                    feedback=self.feedback, description=self.description)
        observation, info = self._episode().reset()
        return self._observe(observation), {**info, "observation": dict(observation.data), "task": self.task}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """One action in any of the accepted forms; see the module docstring."""
        inner = self._episode()
        action, usage = self._normalise(action)
        parsed, error = inner.parse_action(action)
        execution = inner.run_code(parsed) if parsed is not None else None
        observation, reward, terminated, truncated, info = inner.finish_step(
            parsed, execution, invalid_action=error, agent_info=usage)
        info["observation"] = dict(observation.data)
        if terminated or truncated:
            info["trajectory"] = str(self._write_trajectory())
        return self._observe(observation), float(reward), terminated, truncated, info

    def close(self) -> None:
        """Release the episode's sandbox (its warm worker, if any)."""
        if self.inner is not None:
            self.inner.close()
        super().close()

    def render(self) -> str | None:
        """The last observation's text (``render_mode='ansi'``)."""
        return self._last.text if self.render_mode == "ansi" and self._last else None

    # -- helpers ------------------------------------------------------------------------------------------
    def _write_trajectory(self):
        """Record the finished episode like the episode flow does, so ``dojoflow export`` includes it."""
        import time

        from dojoflow.dojo.summary import summarize
        from dojoflow.storage.trajectory import write_trajectory

        inner = self._episode()
        summary = summarize(inner, self.agent_name, time.monotonic() - inner.started_at)
        return write_trajectory(inner.episode_dir / "trajectory.jsonl", summary.trajectory_header(), inner.history)

    def _observe(self, observation: Observation) -> dict[str, Any]:
        self._last = observation
        kind = observation.kind if observation.kind in OBSERVATION_KINDS else "error"
        return {"text": observation.text, "kind": OBSERVATION_KINDS.index(kind),
                "steps_left": int(min(max(self._episode().steps_left, 0), self.max_steps))}

    def _episode(self) -> MLEEnvironment:
        if self.inner is None:
            raise EpisodeStateError("call reset() before step()")
        return self.inner

    @staticmethod
    def _normalise(action: Any) -> tuple[Any, dict[str, Any]]:
        """Map a space sample to the dict form and split off reported usage (tokens, cost)."""
        if isinstance(action, str):
            try:
                action = json.loads(action)
            except json.JSONDecodeError:
                return action, {}
        if not isinstance(action, dict):
            return action, {}
        action = dict(action)
        usage = action.pop("usage", None) or {}
        if isinstance(action.get("type"), (int, np.integer)):
            index = int(action["type"])
            action["type"] = ACTION_TYPES[index] if 0 <= index < len(ACTION_TYPES) else str(index)
            if action["type"] not in ("validate_code", "execute_code"):
                action.pop("code", None)
            step = action.pop("step", None)
            if action["type"] == "submit" and step is not None and int(step) >= 0:
                action["step"] = int(step)
        return action, dict(usage)


def register_envs() -> list[str]:
    """Register ``dojoflow/<task-id>`` for every registered task (idempotent); returns the ids."""
    from dojoflow.tasks_catalog.registry import task_folders

    ids = []
    for task_id in task_folders():
        env_id = f"dojoflow/{task_id}"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="dojoflow.dojo.gym_env:DojoflowEnv", kwargs={"task": task_id},
                         nondeterministic=True, disable_env_checker=False)
        ids.append(env_id)
    return ids


register_envs()
