"""Agents by name: the built-in ones, agents registered in code with :func:`register_agent`, and
third-party agents installed under the ``dojoflow.agents`` entry-point group
(``[project.entry-points."dojoflow.agents"] myagent = "mypkg.agent:MyAgent"``). The object is called with
the agent options, so a class or a factory function both work."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from dojoflow.agents.base import Agent
from dojoflow.errors import UnknownNameError, UnknownOptionError, UsageError

ENTRY_POINT_GROUP = "dojoflow.agents"
BUILTIN: dict[str, str] = {
    "baseline": "dojoflow.agents.baseline:BaselineAgent",
    "react": "dojoflow.agents.react:ReActAgent",
    "aide": "dojoflow.agents.aide:AIDEAgent",
    "star": "dojoflow.agents.star:STARAgent",
}
AGENTS = tuple(BUILTIN)
LLM_AGENTS = ("react", "aide", "star")
AgentFactory = Callable[..., Agent]
_REGISTERED: dict[str, AgentFactory] = {}


def register_agent(name: str, factory: AgentFactory) -> None:
    """Make ``make_agent(name, **options)`` call ``factory(**options)`` (in-process only: a sweep that runs
    episodes on other machines needs the agent installed there, as an entry point)."""
    if name in BUILTIN:
        raise UnknownNameError(f"'{name}' is a built-in agent name")
    _REGISTERED[name] = factory


def plugin_agents() -> dict[str, Any]:
    """Entry points of installed third-party agents, by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_agents() -> list[str]:
    """Every agent name :func:`make_agent` accepts: built-ins first, then registered and installed ones."""
    return list(AGENTS) + sorted((set(_REGISTERED) | set(plugin_agents())) - set(BUILTIN))


LLM_OPTIONS = ("model", "base_url", "temperature", "token_budget")


def _build(name: str, factory: AgentFactory, options: dict[str, Any]) -> Agent:
    """``factory(**options)``, with options the factory does not take reported as a usage error."""
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as exc:
        raise UnknownOptionError(f"agent '{name}' does not take these options ({exc}); "
                                 f"options given: {', '.join(sorted(options)) or '(none)'}") from None
    except ValueError:  # no signature to inspect (a builtin or C callable): let the call decide
        pass
    return factory(**options)


def make_agent(name: str, **options: Any) -> Agent:
    """Build an agent by name; unknown names fail with the list of known ones. Options set to None are dropped
    (so a CLI can pass ``model=None`` to the baseline)."""
    options = {k: v for k, v in options.items() if v is not None}
    if name in BUILTIN:
        if name == "baseline":  # the baseline needs no LLM: the CLI's LLM options do not apply to it
            options = {k: v for k, v in options.items() if k not in LLM_OPTIONS}
        module, _, attr = BUILTIN[name].partition(":")
        return _build(name, getattr(import_module(module), attr), options)
    if name in _REGISTERED:
        return _build(name, _REGISTERED[name], options)
    plugin = plugin_agents().get(name)
    if plugin is not None:
        try:
            factory = plugin.load()
        except Exception as exc:  # noqa: BLE001 - say which plugin is broken, not a bare ImportError
            raise UsageError(f"agent plugin '{name}' ({plugin.value}) failed to load: "
                             f"{type(exc).__name__}: {exc}") from exc
        return _build(name, factory, options)
    raise UnknownNameError(f"unknown agent '{name}'; known agents: {', '.join(available_agents())}")
