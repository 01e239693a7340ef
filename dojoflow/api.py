"""dojoflow's public API: everything a user or a plugin is meant to import, in one place.

    import dojoflow.api as df

    result = df.run_episode(df.EpisodeConfig(task_id="digits", agent="baseline", seed=0))
    env = df.make_env("digits", max_steps=8)            # a gymnasium environment
    backend = df.get_backend("warm-bwrap")               # a sandbox backend
    report = df.synthesize("cars-mpg", df.SynthOptions(n=20))   # verified synthetic tasks; report.kept
    tasks = df.list_synthetic()                          # the registered ones, with provenance

Names load lazily (importing this module is as cheap as importing ``dojoflow``); ``from dojoflow import X``
works for every name here too. Anything not listed in ``__all__`` is internal and may change.

The extension points, each one door (see ``docs/extending.md``):

- an agent: implement :class:`Agent` (or subclass :class:`LLMAgent`), then :func:`register_agent` or a
  ``dojoflow.agents`` entry point;
- a sandbox backend: implement :class:`SandboxBackend` (and :class:`ProcessHost` for the warm mode), then
  :func:`register_backend` or a ``dojoflow.sandboxes`` entry point;
- a metric: a :class:`Metric`, then :func:`register_metric` or a ``dojoflow.metrics`` entry point;
- a task: one folder with ``task.yaml``, ``description.md``, ``prepare.py`` (usually
  :func:`write_standard_split`) and a leaderboard, on ``DOJOFLOW_TASK_PATH``; a new task kind:
  :func:`register_task_kind`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # episodes
    "EpisodeConfig": "dojoflow.flows.config",
    "EpisodeResult": "dojoflow.dojo.summary",
    "run_episode": "dojoflow.flows.run",
    "Settings": "dojoflow.config",
    "get_settings": "dojoflow.config",
    # the environment
    "MLEEnvironment": "dojoflow.dojo.env",
    "make_env": "dojoflow.flows.run",
    "Action": "dojoflow.dojo.actions",
    "Observation": "dojoflow.dojo.observation",
    "REWARD_MODES": "dojoflow.dojo.rewards",
    # agents
    "Agent": "dojoflow.agents.base",
    "LLMAgent": "dojoflow.agents.llm_base",
    "make_agent": "dojoflow.agents.registry",
    "register_agent": "dojoflow.agents.registry",
    "available_agents": "dojoflow.agents.registry",
    # sandboxes
    "SandboxBackend": "dojoflow.infra.sandbox.base",
    "ProcessHost": "dojoflow.infra.sandbox.base",
    "StepContext": "dojoflow.infra.sandbox.base",
    "HostedProcess": "dojoflow.infra.sandbox.base",
    "ExecutionRequest": "dojoflow.infra.sandbox.base",
    "ExecutionLimits": "dojoflow.infra.sandbox.base",
    "ExecutionResult": "dojoflow.infra.sandbox.base",
    "get_backend": "dojoflow.infra.sandbox.registry",
    "register_backend": "dojoflow.infra.sandbox.registry",
    "backend_names": "dojoflow.infra.sandbox.registry",
    "python_command": "dojoflow.infra.sandbox.process",
    # metrics and grading
    "Metric": "dojoflow.tasks_catalog.metrics",
    "register_metric": "dojoflow.tasks_catalog.metrics",
    "get_metric": "dojoflow.tasks_catalog.metrics",
    "grade_submission": "dojoflow.tasks_catalog.grading",
    # task authoring
    "TaskSpec": "dojoflow.tasks_catalog.spec",
    "load_spec": "dojoflow.tasks_catalog.spec",
    "get_task": "dojoflow.tasks_catalog.registry",
    "list_tasks": "dojoflow.tasks_catalog.registry",
    "prepare_task": "dojoflow.tasks_catalog.preparation",
    "write_standard_split": "dojoflow.tasks_catalog.preparation",
    "report_progress": "dojoflow.tasks_catalog.preparation",
    "TaskKind": "dojoflow.tasks_catalog.kinds",
    "register_task_kind": "dojoflow.tasks_catalog.kinds",
    # synthetic tasks (dojoflow/synth; docs/synthetic.md)
    "SynthOptions": "dojoflow.synth.pipeline",
    "synthesize": "dojoflow.synth.pipeline",
    "list_synthetic": "dojoflow.synth.pipeline",
    "GenerationReport": "dojoflow.synth.report",
    "import_sandmle_tasks": "dojoflow.synth.sandmle",
    "export_sandmle_task": "dojoflow.synth.sandmle",
    # errors
    "DojoflowError": "dojoflow.errors",
    "UsageError": "dojoflow.errors",
    "UnknownNameError": "dojoflow.errors",
    "TaskSpecError": "dojoflow.errors",
    "SweepSpecError": "dojoflow.errors",
    "PreparationError": "dojoflow.errors",
    "MetricInputError": "dojoflow.errors",
    "SandboxError": "dojoflow.errors",
    "LLMError": "dojoflow.errors",
    "SynthesisError": "dojoflow.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dojoflow.api' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers and IDEs see
    pass
