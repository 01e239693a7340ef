"""The rollout record: what an RL trainer needs from one rollout, and no more (advantages are its job).

A record holds the prompt and completion turns (chat messages), the token ids where the policy gave them
(token-in/token-out: re-tokenising chat history corrupts RL, as verl's agent loop notes), the per-step and
final rewards, and ``masked`` / ``truncated_by`` for budget overruns. Records are JSON lines.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TokenTurn:
    """Token ids of one policy turn, when the policy reports them (else the record has none)."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float] | None = None


@dataclass
class RolloutRecord:
    """One rollout of a GRPO group (``group_id``, ``index`` within it); see the module docstring."""

    group_id: str
    index: int
    task: str
    seed: int
    prompt: list[dict[str, str]]
    completion: list[dict[str, str]]
    step_rewards: list[float]
    final_reward: float
    masked: bool
    truncated_by: str | None
    tokens: list[TokenTurn] = field(default_factory=list)
    episode_id: str = ""
    final: dict[str, Any] | None = None
    turns: int = 0
    steps: int = 0
    wall_s: float = 0.0
    code_time_s: float = 0.0
    startup_s: float = 0.0
    act_time_s: float = 0.0
    worker: str = ""
    error: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        """Identity within a run: one record per (group, index), whichever worker produced it."""
        return (self.group_id, self.index)

    @property
    def reward(self) -> float:
        """The scalar a GRPO trainer ranks a group by: the final reward."""
        return self.final_reward

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutRecord:
        """The inverse of :meth:`to_dict`."""
        data = dict(data)
        data["tokens"] = [TokenTurn(**t) for t in data.get("tokens", [])]
        return cls(**data)


def write_records(path: Path, records: list[RolloutRecord]) -> Path:
    """Append records as JSON lines (one per rollout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for record in records:
            fh.write(json.dumps(record.to_dict()) + "\n")
    return path


def read_records(path: Path) -> list[RolloutRecord]:
    """Records written by :func:`write_records`."""
    return [RolloutRecord.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
