"""Trajectory datasets for training: SFT conversations and RL step records, as Parquet and JSON Lines.

**SFT** (one row per episode): ``episode_id, task, agent, seed, valid, score, medal, human_rank, messages``
where ``messages`` is a chat: a ``system`` turn (the rules), then alternating ``user`` turns (the
observations: the task overview first, then each step's feedback) and ``assistant`` turns (each action as
the JSON object an LLM agent would emit). Loads with ``datasets.load_dataset("parquet", ...)`` or pyarrow.

**RL** (one row per step): ``episode_id, task, agent, seed, step, observation, action, reward, return,
terminated, truncated, next_observation, feedback_score, valid_submission, final_score, final_valid``.
``reward`` is exactly what the environment returned; ``return`` is the undiscounted reward-to-go.

Filters pick episodes by ``task``, ``agent``, ``medal`` (a medal name, ``any`` or ``none``) and ``valid``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dojoflow.errors import UnknownNameError, UsageError
from dojoflow.storage.trajectory import read_trajectory

SYSTEM_PROMPT = ("You are a machine-learning engineer solving a Kaggle-style task in dojoflow. Each turn, reply "
                 "with one JSON action: request_info, validate_code, execute_code (with 'code'), get_history, or "
                 "submit (optionally with 'step'). Code runs with the data in data/ and must write submission.csv.")


MEDAL_FILTERS = ("gold", "silver", "bronze", "any", "none")
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes"), ("0", "false", "no")


@dataclass(frozen=True)
class EpisodeFilter:
    """Which episodes to export; ``None`` fields match everything."""

    task: str | None = None
    agent: str | None = None
    medal: str | None = None
    valid: bool | None = None

    @classmethod
    def parse(cls, items: list[str]) -> EpisodeFilter:
        """From ``key=value`` strings (CLI ``--filter``)."""
        fields: dict[str, Any] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or key not in ("task", "agent", "medal", "valid"):
                raise UsageError(f"bad filter '{item}': use task=ID, agent=NAME, medal=gold|silver|bronze|any|none "
                                 "or valid=true|false")
            if key == "medal" and value not in MEDAL_FILTERS:
                raise UsageError(f"bad filter '{item}': medal is one of {', '.join(MEDAL_FILTERS)}")
            if key == "valid" and value.lower() not in TRUE_WORDS + FALSE_WORDS:
                raise UsageError(f"bad filter '{item}': valid is true or false")
            fields[key] = value.lower() in TRUE_WORDS if key == "valid" else value
        return cls(**fields)

    def matches(self, header: dict[str, Any]) -> bool:
        """Whether a trajectory header passes every set field of the filter."""
        medal = header.get("medal")
        return ((self.task is None or header.get("task_id") == self.task)
                and (self.agent is None or header.get("agent") == self.agent)
                and (self.valid is None or bool(header.get("valid")) == self.valid)
                and (self.medal is None or (self.medal == "any" and medal is not None)
                     or (self.medal == "none" and medal is None) or medal == self.medal))


def iter_episodes(episodes_dir: Path, selection: EpisodeFilter) -> Iterator[tuple[dict, list[dict]]]:
    """(header, steps) of every recorded episode matching the filter, in a stable order."""
    for path in sorted(Path(episodes_dir).glob("*/trajectory.jsonl")):
        header, steps = read_trajectory(path)
        if selection.matches(header):
            yield header, steps


def recorded_values(episodes_dir: Path) -> dict[str, Any]:
    """How many episodes are recorded and which tasks and agents they cover (to explain an empty export)."""
    headers = [header for header, _ in iter_episodes(episodes_dir, EpisodeFilter())]
    return {"episodes": len(headers), "tasks": sorted({str(h.get("task_id")) for h in headers}),
            "agents": sorted({str(h.get("agent")) for h in headers})}


def _action_text(action: dict[str, Any]) -> str:
    return json.dumps(action, ensure_ascii=False)


def sft_record(header: dict, steps: list[dict]) -> dict[str, Any]:
    """One conversation per episode."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": header.get("initial_observation", "")}]
    for step in steps:
        messages.append({"role": "assistant", "content": _action_text(step["action"])})
        messages.append({"role": "user", "content": step["observation"]})
    return {"episode_id": header["episode_id"], "task": header["task_id"], "agent": header["agent"],
            "seed": header["seed"], "valid": header["valid"], "score": header["score"], "medal": header["medal"],
            "human_rank": header["human_rank"], "messages": messages}


def rl_records(header: dict, steps: list[dict]) -> list[dict[str, Any]]:
    """One record per step, with reward-to-go."""
    rewards = [float(s["reward"]) for s in steps]
    to_go = [sum(rewards[i:]) for i in range(len(rewards))]
    observations = [header.get("initial_observation", "")] + [s["observation"] for s in steps]
    records = []
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        records.append({
            "episode_id": header["episode_id"], "task": header["task_id"], "agent": header["agent"],
            "seed": header["seed"], "step": step["index"], "observation": observations[i],
            "action": _action_text(step["action"]), "reward": rewards[i], "return": to_go[i],
            "terminated": last and step["action"].get("type") == "submit",
            "truncated": last and step["action"].get("type") != "submit",
            "next_observation": observations[i + 1], "feedback_score": step.get("feedback_score"),
            "valid_submission": step.get("valid_submission"), "final_score": header["score"],
            "final_valid": header["valid"],
        })
    return records


def export(episodes_dir: Path, kind: str, out: Path, selection: EpisodeFilter = EpisodeFilter()) -> dict[str, Any]:
    """Write ``out`` (Parquet) and ``out`` with a ``.jsonl`` suffix; returns counts and paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind not in ("sft", "rl"):
        raise UnknownNameError(f"unknown export format '{kind}'; choose sft or rl")
    rows: list[dict[str, Any]] = []
    episodes = 0
    for header, steps in iter_episodes(episodes_dir, selection):
        episodes += 1
        rows.extend([sft_record(header, steps)] if kind == "sft" else rl_records(header, steps))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    parquet = out if out.suffix == ".parquet" else out.with_suffix(".parquet")
    jsonl = parquet.with_suffix(".jsonl")
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    with jsonl.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return {"episodes": episodes, "rows": len(rows), "parquet": str(parquet), "jsonl": str(jsonl)}
