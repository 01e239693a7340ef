"""One episode driven by an RL policy: tool calls or text in, observation text and rewards out.

Every adapter (TRL, verifiers, SkyRL) and the group rollouts share this class, so the rewards, the
budget handling and the ``masked`` / ``truncated_by`` rule are the same everywhere. It wraps
:class:`~dojoflow.dojo.env.MLEEnvironment` directly (no Prefect): an RL trainer pays no orchestration cost.

Rewards: ``step_rewards`` are the environment's per-step rewards (the reward mode on feedback);
``final_reward`` is the reward mode applied to the final grade (HumanRank for ``human_rank`` and
``improvement``), 0 when no valid submission was made.
"""

from __future__ import annotations

import time
from typing import Any

from dojoflow.dojo.env import MLEEnvironment
from dojoflow.dojo.rewards import reward_for
from dojoflow.errors import DojoflowError, EpisodeStateError
from dojoflow.infra.sandbox import ExecutionLimits, SandboxBackend, get_backend
from dojoflow.rl.config import RolloutConfig, TaskRef, resolve_task
from dojoflow.rl.slot import RolloutSlot, SlotEnvironment
from dojoflow.rl.text_actions import parse_action_text
from dojoflow.tasks_catalog.spec import TaskSpec


class EpisodeSession:
    """A live episode for one rollout; ``start()`` then ``act()`` until ``done``; ``close()`` always."""

    def __init__(self, task: TaskRef | TaskSpec, config: RolloutConfig | None = None, *, seed: int = 0,
                 sandbox: SandboxBackend | None = None, episode_id: str | None = None,
                 slot: RolloutSlot | None = None) -> None:
        """``slot``: run in a reused warm sandbox and workspace (:mod:`dojoflow.rl.slot`); else a sandbox of
        the episode's own (``sandbox``, or a new one of ``config.sandbox``), closed with the session."""
        self.config = config or RolloutConfig()
        self.spec = resolve_task(task)
        self.seed = seed
        self.slot = slot
        self._own_sandbox = sandbox is None and slot is None
        self.sandbox = slot.sandbox if slot is not None else sandbox or get_backend(self.config.sandbox)
        if slot is not None:
            env = SlotEnvironment(self.spec, **self._env_kwargs(episode_id))
            env.slot_workspace = slot.workspace
            self.env: MLEEnvironment = env
        else:
            self.env = MLEEnvironment(self.spec, **self._env_kwargs(episode_id))
        self.step_rewards: list[float] = []
        self.truncated_by: str | None = None
        self.harness_error: str | None = None
        self.final_reward = 0.0
        self.final: dict[str, Any] | None = None
        self.code_time_s = 0.0  # the agent code's own run time, as the sandbox measured it
        self.startup_s = 0.0  # sandbox start-up (a warm worker importing its libraries)
        self.act_time_s = 0.0  # wall time spent in act(): the code's run plus the harness around it
        self.started = False

    def _env_kwargs(self, episode_id: str | None) -> dict[str, Any]:
        c = self.config
        limits = None
        if c.step_timeout_s is not None or c.memory_mb is not None:
            res = self.spec.resources
            limits = ExecutionLimits(timeout_s=c.step_timeout_s or res.step_timeout_s,
                                     memory_mb=c.memory_mb or res.memory_mb)
        kwargs: dict[str, Any] = {"seed": self.seed, "max_steps": c.max_steps, "reward_mode": c.reward_mode,
                                  "sandbox": self.sandbox, "episode_id": episode_id, "limits": limits,
                                  "wall_time_s": c.wall_time_s, **c.env_kwargs}
        if c.feedback is not None:
            kwargs["feedback"] = c.feedback
        return kwargs

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> str:
        """Prepare the data, create the workspace; returns the task overview (the first observation)."""
        if self.slot is not None:
            self.slot.clear()
        observation, _ = self.env.reset()
        self.started = True
        return observation.text

    @property
    def done(self) -> bool:
        """The episode has its final grade (submitted, a budget ran out, or the harness failed)."""
        return self.env.done or self.harness_error is not None

    @property
    def masked(self) -> bool:
        """Whether a trainer should leave this rollout out of the loss (see ``RolloutConfig.mask_on``)."""
        return self.truncated_by is not None and self.truncated_by in self.config.mask_on

    def close(self) -> None:
        """Release the episode's sandbox (the warm worker) if this session created it."""
        if self._own_sandbox:
            self.sandbox.close()

    # -- acting -------------------------------------------------------------------------------------------
    def act(self, action: Any) -> tuple[str, float, bool]:
        """One action (dict, JSON text, an ``Action``, or free text holding one): (observation, reward, done).

        Bad actions become error observations; a failure of the harness itself ends the episode with
        ``truncated_by='harness-error'`` (masked) rather than raising into the trainer."""
        if not self.started:
            raise EpisodeStateError("call start() before act()")
        if self.done:
            raise EpisodeStateError("the episode has ended; its rewards are final")
        started = time.monotonic()
        try:
            return self._act(action)
        finally:
            self.act_time_s += time.monotonic() - started

    def _act(self, action: Any) -> tuple[str, float, bool]:
        if isinstance(action, str):
            action = parse_action_text(action)
        try:
            observation, reward, terminated, truncated, info = self._step(action)
        except DojoflowError as exc:
            if isinstance(exc, EpisodeStateError):
                raise
            return self._fail(f"{type(exc).__name__}: {exc}"), 0.0, True
        self.step_rewards.append(float(reward))
        if truncated:
            self.truncated_by = str(info.get("truncated_by", "step"))
        if terminated or truncated:
            self._finalise()
        return observation, float(reward), self.done

    def _step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        env = self.env
        parsed, error = env.parse_action(action)
        execution = env.run_code(parsed) if parsed is not None else None
        if execution is not None:
            self.code_time_s += float(execution.duration_s or 0.0)
            self.startup_s += float(execution.startup_s or 0.0)
            if execution.timed_out and self.truncated_by is None and "step-timeout" in self.config.mask_on:
                self.truncated_by = "step-timeout"
        observation, reward, terminated, truncated, info = env.finish_step(parsed, execution, invalid_action=error)
        return observation.text, reward, terminated, truncated, info

    def end(self, reason: str) -> str:
        """End an episode the policy did not finish (e.g. out of turns): grade the best submission so far."""
        if self.done:
            return ""
        self.truncated_by = self.truncated_by or reason
        self.env.grade_final(None, f"{reason} budget exhausted: the best valid submission by feedback score was graded")
        self._finalise()
        return f"The {reason} budget is used up; the best valid submission by feedback score was graded."

    def _fail(self, message: str) -> str:
        self.harness_error = message
        self.truncated_by = "harness-error"
        return f"The harness failed: {message}. The episode is over (masked)."

    def _finalise(self) -> None:
        outcome = self.env.outcome
        if outcome is None:
            return
        mode = "human_rank" if self.config.reward_mode == "improvement" else self.config.reward_mode
        self.final = outcome.grade.to_dict()
        self.final_reward = float(reward_for(mode, outcome.grade, None, self.spec.higher_is_better))

    # -- tool form (TRL, verifiers): one method per action ------------------------------------------------
    def tool(self, action: dict[str, Any]) -> str:
        """Run one action and return the observation text (what a tool call returns to the model)."""
        text, _, _ = self.act(action)
        return text

    def summary(self) -> dict[str, Any]:
        """Rewards, flags and timings of the episode so far (what a record or a reward function reads)."""
        return {"task": self.spec.id, "seed": self.seed, "episode_id": self.env.episode_id,
                "step_rewards": list(self.step_rewards), "final_reward": self.final_reward,
                "done": self.done, "truncated_by": self.truncated_by, "masked": self.masked,
                "final": self.final, "harness_error": self.harness_error, "steps": len(self.env.history),
                "code_time_s": round(self.code_time_s, 4), "startup_s": round(self.startup_s, 4),
                "act_time_s": round(self.act_time_s, 4),
                "elapsed_s": round(time.monotonic() - self.env.started_at, 4)}
