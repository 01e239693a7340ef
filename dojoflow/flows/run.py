"""The two ways in for code that uses dojoflow as a library: run a whole episode, or get an environment."""

from __future__ import annotations

from typing import Any

from dojoflow.agents.base import Agent
from dojoflow.dojo.summary import EpisodeResult
from dojoflow.flows.config import EpisodeConfig


def run_episode(config: EpisodeConfig, *, prefect: bool = False, agent: Agent | None = None) -> EpisodeResult:
    """Run one episode. ``prefect=True`` runs it as a Prefect flow run (the DAG in the UI; Prefect's local
    API starts when no server is configured); otherwise the same steps run as plain calls. ``agent``: an
    agent object to use instead of building ``config.agent`` by name (plain runs only)."""
    if not prefect:
        from dojoflow.flows.episode import drive_episode

        return drive_episode(config, agent=agent)
    if agent is not None:
        raise TypeError("an agent object cannot travel into a Prefect flow run: register it by name "
                        "(register_agent or a dojoflow.agents entry point) and set config.agent")
    from dojoflow.config import configure_prefect_environment, get_settings

    configure_prefect_environment(get_settings())
    from dojoflow.flows.prefect_episode import run_episode as run_flow

    data = run_flow(config)
    return EpisodeResult(**{k: v for k, v in data.items() if k in EpisodeResult.__dataclass_fields__})


def make_env(task: str, **options: Any):
    """A gymnasium environment for ``task`` (``dojoflow/<task>`` registered), with ``options`` such as
    ``max_steps``, ``reward_mode``, ``sandbox``, ``wall_time_s``."""
    import gymnasium as gym

    import dojoflow.dojo.gym_env  # noqa: F401 - registers dojoflow/<task-id>

    return gym.make(f"dojoflow/{task}", **options)
