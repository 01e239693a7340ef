"""The agent interface: see an observation, return an action."""

from __future__ import annotations

from typing import Any, Protocol

from dojoflow.dojo.actions import Action
from dojoflow.dojo.observation import Observation


class Agent(Protocol):
    """An agent. ``last_step_info`` carries per-step accounting (tokens, cost, notes) into the trajectory.

    Optional: ``set_episode_dir(path)``, called by the episode driver before ``reset`` when present, tells the
    agent where the episode's files are (LLM agents write their artifacts under ``<path>/agent/``).
    """

    name: str
    last_step_info: dict[str, Any]

    def reset(self, observation: Observation, seed: int) -> None:
        """Start an episode from its first observation (the task overview)."""

    def act(self, observation: Observation) -> Action:
        """The next action for ``observation``."""
