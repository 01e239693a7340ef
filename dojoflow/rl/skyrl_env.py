"""SkyRL-gym's ``BaseTextEnv`` contract over a dojoflow episode (text in, chat messages out).

SkyRL creates the environment with ``skyrl_gym.make("dojoflow", env_config=..., extras=row)``, where the
dataset row carries the task (``extras["task"]`` or ``extras["extra_info"]["task"]``, any id or folder)
and the seed; ``env_config`` may set any :class:`~dojoflow.rl.config.RolloutConfig` field. Then:

- ``init(prompt) -> (prompt, metadata)``: starts the episode; the task overview is appended to the last
  user message;
- ``step(text) -> {observations, reward, done, metadata}``: the model's text is parsed into an action
  (:mod:`dojoflow.rl.text_actions`); intermediate turns are rewarded with the step reward, the last turn
  with the final reward (``metadata`` holds both, ``masked`` and ``truncated_by``);
- ``close()`` releases the warm sandbox.

Call :func:`register_skyrl` once (it is idempotent) to make the id ``dojoflow`` known to ``skyrl_gym.make``.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput

from dojoflow.errors import UsageError
from dojoflow.rl.config import RolloutConfig
from dojoflow.rl.session import EpisodeSession

ENV_ID = "dojoflow"


def _config(env_config: Any) -> RolloutConfig:
    if env_config is None:
        return RolloutConfig()
    if isinstance(env_config, RolloutConfig):
        return env_config
    items = dict(env_config.items()) if hasattr(env_config, "items") else {}
    known = {f.name for f in fields(RolloutConfig)}
    unknown = set(items) - known
    if unknown:
        raise UsageError(f"unknown dojoflow env_config keys: {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(known))}")
    if "mask_on" in items:
        items["mask_on"] = tuple(items["mask_on"])
    return RolloutConfig(**items)


class DojoflowTextEnv(BaseTextEnv):
    """One dojoflow episode per environment object (SkyRL makes one per trajectory)."""

    def __init__(self, env_config: Any = None, extras: dict[str, Any] | None = None) -> None:
        super().__init__()
        extras = dict(extras or {})
        info = dict(extras.get("extra_info") or {})
        task = extras.get("task", info.get("task"))
        if not task:
            raise UsageError("the SkyRL dataset row needs 'task' (or extra_info.task): a task id or task folder")
        self.config = _config(env_config)
        self.max_turns = self.config.max_turns
        self.session = EpisodeSession(task, self.config, seed=int(extras.get("seed", info.get("seed")) or 0))

    def init(self, prompt: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Start the episode; the overview joins the last user message (or becomes one)."""
        overview = self.session.start()
        prompt = [dict(m) for m in prompt]
        if prompt and prompt[-1].get("role") == "user":
            prompt[-1]["content"] = f"{prompt[-1]['content']}\n\n{overview}"
        else:
            prompt.append({"role": "user", "content": overview})
        return prompt, {"task": self.session.spec.id, "episode_id": self.session.env.episode_id}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """One model turn: parse, act, and report the observation and reward (see the module docstring)."""
        self.turns += 1
        if self.session.done:
            text, step_reward = "The episode is over.", 0.0
        else:
            text, step_reward, _ = self.session.act(action)
        if not self.session.done and self.turns >= self.max_turns:
            text += "\n\n" + self.session.end("turns")
        done = self.session.done
        summary = self.session.summary()
        metadata = {"step_reward": step_reward, "final_reward": summary["final_reward"],
                    "masked": summary["masked"], "truncated_by": summary["truncated_by"],
                    "episode_id": summary["episode_id"]}
        return BaseTextEnvStepOutput(observations=[] if done else [{"role": "user", "content": text}],
                                     reward=summary["final_reward"] if done else step_reward, done=done,
                                     metadata=metadata, postprocessed_action=None)

    def get_metrics(self) -> dict[str, Any]:
        """Per-episode metrics SkyRL aggregates (numeric ones are averaged)."""
        s = self.session.summary()
        return {"steps": s["steps"], "final_reward": s["final_reward"], "masked": float(s["masked"])}

    def close(self) -> None:
        """Release the episode's warm sandbox."""
        self.session.close()


def register_skyrl() -> str:
    """Register :class:`DojoflowTextEnv` with ``skyrl_gym`` as ``dojoflow`` (idempotent); returns the id."""
    import skyrl_gym
    from skyrl_gym.envs.registration import registry

    if ENV_ID not in registry:
        skyrl_gym.register(id=ENV_ID, entry_point="dojoflow.rl.skyrl_env:DojoflowTextEnv")
    return ENV_ID
