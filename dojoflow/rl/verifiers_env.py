"""verifiers' ``load_environment`` contract (Prime Intellect, the classic ``vf.MultiTurnEnv`` API).

``load_environment(tasks=[...], ...)`` returns a ``vf.MultiTurnEnv`` holding a dataset of task rows (the
task reference and seed in ``info``), a ``vf.Rubric`` of weighted reward functions (the final reward,
weight 1; the best step reward and masking as metrics, weight 0) and the multi-turn loop: each model turn
is parsed into an action (:mod:`dojoflow.rl.text_actions`) and answered with the observation, until the
episode is submitted or a budget runs out. Environment work runs in a thread, so verifiers' event loop
keeps serving the other rollouts of a group. As a verifiers environment module::

    # environments/dojoflow_env/dojoflow_env.py
    from dojoflow.rl.verifiers_env import load_environment
"""

from __future__ import annotations

import asyncio
from typing import Any

import verifiers as vf
from datasets import Dataset

from dojoflow.rl.config import RolloutConfig, TaskRef, dataset_rows
from dojoflow.rl.session import EpisodeSession

SESSION = "dojoflow_session"
SUMMARY = "dojoflow"


class DojoflowMultiTurnEnv(vf.MultiTurnEnv):
    """One dojoflow episode per rollout (the session lives in the rollout's ``state``)."""

    def __init__(self, config: RolloutConfig, **kwargs: Any) -> None:
        super().__init__(max_turns=config.max_turns, **kwargs)
        self.config = config

    async def setup_state(self, state: vf.State, **kwargs: Any) -> vf.State:
        """Start the row's episode; its overview joins the last prompt message."""
        info = state.get("info") or {}
        session = EpisodeSession(info["dojoflow_task"], self.config, seed=int(info.get("dojoflow_seed", 0)))
        state[SESSION] = session
        overview = await asyncio.to_thread(session.start)
        prompt = [dict(m) for m in state["prompt"]]
        prompt[-1]["content"] = f"{prompt[-1]['content']}\n\n{overview}"
        state["prompt"] = prompt
        return state

    async def env_response(self, messages: vf.Messages, state: vf.State, **kwargs: Any) -> vf.Messages:
        """The observation of the action in the model's last turn; marks the end when the episode is over."""
        session: EpisodeSession = state[SESSION]
        last = messages[-1]
        text = last.get("content") if isinstance(last, dict) else getattr(last, "content", "")
        observation, _, done = await asyncio.to_thread(session.act, str(text or ""))
        if not done and len(state["trajectory"]) >= self.config.max_turns:
            observation += "\n\n" + await asyncio.to_thread(session.end, "turns")
            done = True
        response = [vf.UserMessage(content=observation)]
        if done:
            state["final_env_response"] = response
        return response

    @vf.cleanup
    async def finish_episode(self, state: vf.State) -> None:
        """Grade an unfinished episode, keep its summary for the rubric, release the warm sandbox."""
        session: EpisodeSession | None = state.pop(SESSION, None)
        if session is None:
            return
        try:
            if session.started and not session.done:
                await asyncio.to_thread(session.end, "turns")
            state[SUMMARY] = session.summary()
        finally:
            await asyncio.to_thread(session.close)


def final_reward(state: vf.State, **_: Any) -> float:
    """The reward mode on the final grade (0 for masked rollouts: see ``masked``)."""
    summary = state.get(SUMMARY) or {}
    return 0.0 if summary.get("masked", True) else float(summary.get("final_reward", 0.0))


def best_step_reward(state: vf.State, **_: Any) -> float:
    """The best per-step (feedback) reward of the episode."""
    return float(max((state.get(SUMMARY) or {}).get("step_rewards", []), default=0.0))


def masked(state: vf.State, **_: Any) -> float:
    """1 when the rollout should be left out of the loss (timed out, harness failure), else 0."""
    return float((state.get(SUMMARY) or {}).get("masked", True))


def load_environment(tasks: list[TaskRef] | None = None, *, repeats: int = 1, seed: int = 0,
                     config: RolloutConfig | None = None, **config_fields: Any) -> vf.Environment:
    """The verifiers environment over ``tasks`` (ids or task folders; default: three small built-ins).

    ``config_fields`` are :class:`~dojoflow.rl.config.RolloutConfig` fields (``max_steps``, ``reward_mode``,
    ``feedback``, ...), so ``vf-eval dojoflow -a '{"feedback": "validation"}'`` works."""
    config = config or RolloutConfig(**config_fields)
    rows = dataset_rows(tasks or ["iris-species", "penguins-body-mass", "wine-cultivar"], repeats=repeats, seed=seed)
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": "",
                                  "info": {"dojoflow_task": r["task"], "dojoflow_seed": r["seed"]}} for r in rows])
    rubric = vf.Rubric(funcs=[final_reward, best_step_reward, masked], weights=[1.0, 0.0, 0.0])
    return DojoflowMultiTurnEnv(config, dataset=dataset, rubric=rubric, system_prompt=config.system_prompt)
