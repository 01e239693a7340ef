"""The ``dojoflow`` command: one root app over small command modules.

Each module holds one group of commands and imports only typer and rich at module level; a command imports
what it needs (pandas, Prefect, MLflow) inside its body, so ``dojoflow --help`` and ``dojoflow tasks list``
never pay for the orchestration stack. No command module imports this one: this module assembles them.
The error policy for every command is :class:`dojoflow.cli.common.ErrorPolicyGroup`.
"""

from __future__ import annotations

import typer

from dojoflow.cli import (
    agents,
    cache,
    episodes,
    grading,
    housekeeping,
    results,
    sandbox,
    services,
    sweeps,
    synth,
    tasks,
)
from dojoflow.cli.common import ErrorPolicyGroup

app = typer.Typer(help="dojoflow: a workflow-orchestrated gym for machine-learning-engineering agents.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, cls=ErrorPolicyGroup)
app.add_typer(tasks.app, name="tasks")
app.add_typer(agents.app, name="agents")
app.add_typer(cache.app, name="cache")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(sweeps.app, name="sweep")
app.add_typer(housekeeping.app, name="episodes")
app.add_typer(synth.app, name="synth")
for module in (episodes, grading, results, services):
    for name, command in module.COMMANDS.items():
        app.command(name)(command)


def main() -> None:
    """Entry point of the ``dojoflow`` script."""
    app()


__all__ = ["app", "main"]
