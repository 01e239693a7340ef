"""``EpisodeConfig``: everything that defines one episode, in one frozen value.

The CLI, sweeps and the API build it; the plain driver and the Prefect flow take it as it is (the flow
as its one parameter, so a deployment run carries it as JSON: :meth:`EpisodeConfig.to_dict` /
:meth:`EpisodeConfig.from_dict`). Defaults come from :mod:`dojoflow.defaults`.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from dojoflow.defaults import DEFAULT_AGENT, DEFAULT_MAX_STEPS, DEFAULT_REWARD_MODE, DEFAULT_SEED
from dojoflow.dojo.feedback import DEFAULT_FEEDBACK, feedback_protocol
from dojoflow.dojo.flags import AUDITED_FLAGS, DEFAULT_FLAGS, integrity_names
from dojoflow.dojo.obfuscation import ORIGINAL, description_variant
from dojoflow.errors import UsageError

COMMAND_FEEDBACK = "format-only"


@dataclass(frozen=True)
class EpisodeConfig:
    """One agent on one task with one seed and a budget.

    ``sweep_id`` is set for sweep episodes (the episode id is then derived from the idempotency key);
    ``parent_run_id`` is the sweep's MLflow run, parent of the episode's run. ``command`` makes the episode
    a command agent's (an external program run for the whole episode, see ``agents/external/``); ``agent``
    is then only its label.

    ``episode_id`` is the episode's one name: its Prefect flow-run name, its MLflow run name, its folder and
    results file, what the CLI prints. A sweep episode's is its idempotency key; any other episode gets
    ``<agent>--<task>--s<seed>--<8 hex>`` from :meth:`with_identity`, which every way in calls once, so a
    Prefect retry of a flow run (same parameters) is the same episode again.
    """

    task_id: str
    agent: str = DEFAULT_AGENT
    seed: int = DEFAULT_SEED
    max_steps: int = DEFAULT_MAX_STEPS
    wall_time_s: float | None = None
    cost_budget_usd: float | None = None
    sandbox: str | None = None
    reward_mode: str = DEFAULT_REWARD_MODE
    track: bool = True
    sweep_id: str | None = None
    parent_run_id: str | None = None
    agent_options: dict[str, Any] = field(default_factory=dict)
    feedback: str | None = None  # the feedback protocol (dojo/feedback.py); None: the default for the agent
    command: dict[str, Any] | None = None  # a command agent (agents/external/spec.py); ``agent`` is its label
    episode_id: str | None = None
    integrity: tuple[str, ...] = DEFAULT_FLAGS  # the integrity flags to run (dojo/flags.py); () for none
    description: str = ORIGINAL  # the contamination probe: "obfuscated" hides the task's names (dojo/obfuscation.py)
    judge: dict[str, Any] = field(default_factory=dict)  # the rule-violation judge's model / base_url

    def __post_init__(self) -> None:
        object.__setattr__(self, "integrity", integrity_names(self.integrity))  # a list from JSON, a CLI string
        description_variant(self.description)
        protocol = feedback_protocol(self.protocol)  # an unknown name fails here, with the known ones
        if self.command is not None and protocol.name != COMMAND_FEEDBACK:
            raise UsageError(f"a command agent gets MLE-bench's format-only validation endpoint: its feedback "
                             f"protocol is '{COMMAND_FEEDBACK}', not '{protocol.name}'")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise UsageError(f"max_steps must be a whole number >= 1, got {self.max_steps!r}")
        for name in ("wall_time_s", "cost_budget_usd"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"{name} must be > 0 when given, got {value!r}")

    @property
    def protocol(self) -> str:
        """The feedback protocol the episode runs under: the one given, else public-test for in-harness
        agents and format-only for command agents (they get MLE-bench's validation endpoint)."""
        if self.feedback is not None:
            return self.feedback
        return COMMAND_FEEDBACK if self.command is not None else DEFAULT_FEEDBACK

    @property
    def audits_access(self) -> bool:
        """Whether the episode's steps run under the access-audit hook (a flag that reads its log is on)."""
        return bool(AUDITED_FLAGS & set(self.integrity))

    @property
    def episode_key(self) -> str | None:
        """Idempotency key of a sweep episode: (sweep, agent, task, seed)."""
        if self.sweep_id is None:
            return None
        return f"{self.sweep_id}--{self.agent}--{self.task_id}--s{self.seed}"

    def require_key(self) -> str:
        """:attr:`episode_key`, for code that only handles sweep episodes."""
        if self.episode_key is None:
            raise ValueError("not a sweep episode: sweep_id is unset")
        return self.episode_key

    def with_identity(self) -> EpisodeConfig:
        """The config with its ``episode_id`` set (see the class docstring); unchanged when it has one."""
        if self.episode_id:
            return self
        return replace(self, episode_id=self.episode_key
                       or f"{self.agent}--{self.task_id}--s{self.seed}--{uuid.uuid4().hex[:8]}")

    @property
    def run_name(self) -> str:
        """The episode's name in Prefect, MLflow, the CLI and the files: its episode id."""
        return self.with_identity().episode_id or ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a deployment's flow-run parameter)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown episode settings: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**data)
