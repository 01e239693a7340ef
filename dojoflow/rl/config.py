"""What a rollout runs: tasks named by id or by folder, budgets, reward mode and feedback protocol.

Tasks are given as a list of references (a registered task id such as ``iris-species``, or the path of a
task folder holding ``task.yaml``), so any task source plugs in unchanged: built-in, imported (MLE-bench,
MLE-Dojo) and synthetic micro-scale tasks, which are task folders too.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dojoflow.defaults import DEFAULT_REWARD_MODE
from dojoflow.dojo.rewards import REWARD_MODES
from dojoflow.errors import UnknownNameError, UsageError
from dojoflow.tasks_catalog.registry import get_task
from dojoflow.tasks_catalog.spec import SPEC_FILE, TaskSpec, load_spec

TaskRef = str | Path
DEFAULT_SYSTEM_PROMPT = (
    "You are a machine-learning engineer solving a Kaggle-style task in a sandbox. Act with one action per "
    'turn, as a JSON object: {"type": "request_info"}, {"type": "validate_code", "code": "..."}, '
    '{"type": "execute_code", "code": "..."} (run Python that reads data/ and writes submission.csv; it is '
    'scored on held-out rows), {"type": "get_history"}, or {"type": "submit", "step": N} to end the episode. '
    "A fenced ```python block on its own is run as execute_code."
)
MASK_REASONS = ("wall-time", "step-timeout", "harness-error")


def resolve_task(ref: TaskRef | TaskSpec) -> TaskSpec:
    """A task spec from a registered id, a task folder (holding ``task.yaml``) or a spec."""
    if isinstance(ref, TaskSpec):
        return ref
    path = Path(ref)
    if (path / SPEC_FILE).is_file():
        return load_spec(path)
    if isinstance(ref, Path) or "/" in str(ref):
        raise UsageError(f"task folder '{ref}' has no {SPEC_FILE}; give a task id or a folder holding one")
    return get_task(str(ref))


def task_key(ref: TaskRef | TaskSpec) -> str:
    """The string that names a task in a dataset row: the folder path for folders, else the id."""
    if isinstance(ref, TaskSpec):
        return ref.id
    return str(Path(ref).resolve()) if (Path(ref) / SPEC_FILE).is_file() else str(ref)


def environment_accepts(name: str) -> bool:
    """Whether ``MLEEnvironment`` takes keyword ``name`` (``feedback`` arrived with the feedback protocols)."""
    from dojoflow.dojo.env import MLEEnvironment

    return name in inspect.signature(MLEEnvironment.__init__).parameters


@dataclass(frozen=True)
class RolloutConfig:
    """Budgets and reward settings of each rollout (picklable: it travels to rollout processes and Ray actors).

    ``max_steps``: environment steps; ``max_turns``: policy calls (SandMLE: at most 15 LLM calls);
    ``step_timeout_s``: wall time of one code step (SandMLE: 300 s); ``wall_time_s``: of the whole episode.
    ``feedback``: the feedback protocol (``public-test`` default, ``validation``, ``format-only``, ``none``;
    None keeps the environment's default). ``mask_on``: the ``truncated_by`` reasons that mark a rollout
    ``masked`` (to be left out of the loss, as SandMLE did for timed-out episodes).
    """

    max_steps: int = 8
    max_turns: int = 15
    reward_mode: str = DEFAULT_REWARD_MODE
    feedback: str | None = None
    sandbox: str = "warm"
    step_timeout_s: float | None = None
    memory_mb: int | None = None
    wall_time_s: float | None = None
    mask_on: tuple[str, ...] = MASK_REASONS
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Reject what no rollout could run with, before any process starts."""
        if self.reward_mode not in REWARD_MODES:
            raise UnknownNameError(f"unknown reward mode '{self.reward_mode}'; choose one of {', '.join(REWARD_MODES)}")
        if self.max_steps < 1 or self.max_turns < 1:
            raise UsageError("max_steps and max_turns must be at least 1")
        if self.feedback is not None and not environment_accepts("feedback"):
            raise UsageError(f"feedback='{self.feedback}' needs a dojoflow whose MLEEnvironment takes feedback=")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (recorded with every rollout)."""
        return asdict(self)


def dataset_rows(tasks: list[TaskRef], *, repeats: int = 1, seed: int = 0,
                 prompt: str = "Solve the task. Start by reading the task overview.") -> list[dict[str, Any]]:
    """One row per task (``repeats`` times): ``prompt`` (chat messages), ``task`` and ``seed`` columns.

    TRL passes every column to ``reset(**row)``; verifiers keeps ``info``; SkyRL reads ``extras``.
    The rows carry the task reference, not its data: the environment prepares the data when it starts.
    """
    if not tasks:
        raise UsageError("the task list is empty; give task ids (e.g. iris-species) or task folders")
    rows = []
    for r in range(repeats):
        for i, ref in enumerate(tasks):
            resolve_task(ref)  # fail now, with the known ids, rather than inside a trainer's worker
            rows.append({"prompt": [{"role": "user", "content": prompt}], "task": task_key(ref),
                         "seed": seed + r * len(tasks) + i})
    return rows
