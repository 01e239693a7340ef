"""TRL's ``GRPOTrainer(environment_factory=...)`` contract over a dojoflow episode.

TRL creates one environment per rollout with a no-argument call of the factory, calls
``reset(**dataset_row)`` (the row's columns: ``prompt``, ``task``, ``seed``, ...) and appends the returned
text to the last user message, then exposes every public method (with an ``Args:`` docstring) as a
tool; an exception raised by a tool is fed back to the model as the tool's output. Reward functions receive
the environment objects (``environments=``) and read the episode's rewards from them.

    from trl import GRPOConfig, GRPOTrainer
    from dojoflow.rl.trl_env import trl_environment_factory, REWARD_FUNCS, trl_dataset
    trainer = GRPOTrainer(model=..., args=GRPOConfig(...), train_dataset=trl_dataset(["iris-species"]),
                          environment_factory=trl_environment_factory(RolloutConfig(feedback="validation")),
                          reward_funcs=REWARD_FUNCS)

A masked rollout (timed out, harness failure) gets ``None`` from every reward function: TRL turns it
into NaN and leaves it out of the reward sums.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from dojoflow.errors import EpisodeStateError
from dojoflow.rl.config import RolloutConfig, TaskRef, dataset_rows
from dojoflow.rl.session import EpisodeSession


class DojoflowTRLEnv:
    """One dojoflow episode per ``reset``; its public methods are the tools TRL shows the model."""

    def __init__(self, config: RolloutConfig | None = None) -> None:
        self._config = config or RolloutConfig()
        self._session: EpisodeSession | None = None

    def reset(self, task: str | None = None, seed: int = 0, **_columns: Any) -> str:
        """Start a new episode on the row's task; returns the task overview (appended to the prompt)."""
        if task is None:
            raise EpisodeStateError("the dataset row has no 'task' column; build rows with trl_dataset()")
        self._close()
        self._session = EpisodeSession(task, self._config, seed=int(seed))
        return self._session.start()

    def request_info(self) -> str:
        """Show the task overview again: description, data structure, sample submission, metric and budget left.

        Returns:
            The overview text.

        """
        return self._act({"type": "request_info"})

    def validate_code(self, code: str) -> str:
        """Run Python code in the sandbox and check the format of the submission.csv it writes, without a score.

        Args:
            code: A complete Python program; it reads data/ and writes submission.csv in the working directory.

        Returns:
            The run's output and the validation result.

        """
        return self._act({"type": "validate_code", "code": code})

    def execute_code(self, code: str) -> str:
        """Run Python code in the sandbox and score the submission.csv it writes on held-out rows.

        Args:
            code: A complete Python program; it reads data/ and writes submission.csv in the working directory.

        Returns:
            The run's output, the feedback score and its place on the leaderboard.

        """
        return self._act({"type": "execute_code", "code": code})

    def submit(self, step: int = -1) -> str:
        """End the episode and have a submission graded on the hidden private rows.

        Args:
            step: The step whose submission to grade; -1 for the best one by feedback score.

        Returns:
            Confirmation that the episode is over.

        """
        return self._act({"type": "submit"} if step < 0 else {"type": "submit", "step": int(step)})

    # -- read by the reward functions (private: TRL must not offer them as tools) --------------------------
    def _act(self, action: dict[str, Any]) -> str:
        session = self._live()
        if session.done:
            raise EpisodeStateError("the episode is over; no more tool calls are accepted")
        return session.tool(action)

    def _live(self) -> EpisodeSession:
        if self._session is None:
            raise EpisodeStateError("reset() has not been called")
        return self._session

    def _rewards(self) -> dict[str, Any]:
        """The episode's rewards, ending it first if the model stopped without submitting."""
        session = self._live()
        if not session.done:
            session.end("turns")
        return session.summary()

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __del__(self) -> None:
        try:
            self._close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def trl_environment_factory(config: RolloutConfig | None = None) -> Callable[[], DojoflowTRLEnv]:
    """A no-argument factory, as ``environment_factory`` expects, for environments with ``config``."""
    return functools.partial(DojoflowTRLEnv, config)


def trl_dataset(tasks: list[TaskRef], *, repeats: int = 1, seed: int = 0) -> Any:
    """A ``datasets.Dataset`` of task rows (``prompt``, ``task``, ``seed``) for ``train_dataset``."""
    from datasets import Dataset

    return Dataset.from_list(dataset_rows(tasks, repeats=repeats, seed=seed))


def _per_env(read: Callable[[dict[str, Any]], float]) -> Callable[..., list[float | None]]:
    def reward(environments: list[DojoflowTRLEnv] | None = None, **_: Any) -> list[float | None]:
        if environments is None:
            raise EpisodeStateError("this reward function needs TRL's environment_factory (environments=)")
        out: list[float | None] = []
        for env in environments:
            summary = env._rewards()
            out.append(None if summary["masked"] else float(read(summary)))
        return out

    return reward


def final_reward(environments: list[DojoflowTRLEnv] | None = None, **kwargs: Any) -> list[float | None]:
    """The reward mode on the final grade (private rows); None for masked rollouts."""
    return _per_env(lambda s: s["final_reward"])(environments, **kwargs)


def best_step_reward(environments: list[DojoflowTRLEnv] | None = None, **kwargs: Any) -> list[float | None]:
    """The best per-step (feedback) reward of the episode; None for masked rollouts."""
    return _per_env(lambda s: max(s["step_rewards"], default=0.0))(environments, **kwargs)


REWARD_FUNCS = [final_reward, best_step_reward]
