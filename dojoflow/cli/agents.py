"""``dojoflow agents``: the agents there are, and environments for agent programs (command agents)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from dojoflow.cli.common import console

app = typer.Typer(help="Agents: list them; build environments for agent programs.", no_args_is_help=True)


@app.command("list")
def list_agents() -> None:
    """The agents `--agent` accepts (any program runs with `--agent-command`)."""
    from dojoflow.agents.registry import available_agents

    for name in available_agents():
        console.print(name)
    console.print("(any program: dojoflow run --agent-command \"...\"; see docs/agents.md)")


@app.command("venv")
def venv(recipe: str = typer.Argument(..., help="The agent program's recipe: aideml."),
         root: Optional[Path] = typer.Option(None, "--root", help="Where environments are kept (default: "
                                             "$DOJOFLOW_AGENT_VENVS, else ~/.cache/dojoflow/agent-venvs).")) -> None:
    """Build (once) a separate virtual environment for an agent program, and print how to run it."""
    from dojoflow.agents.external.venvs import RECIPES, ensure_venv, entry_point
    from dojoflow.errors import UnknownNameError

    if recipe not in RECIPES:
        raise UnknownNameError(f"unknown agent recipe '{recipe}'; known: {', '.join(sorted(RECIPES))}")
    chosen = RECIPES[recipe]
    with console.status(f"building the {chosen.name} environment (pip, once)..."):
        folder = ensure_venv(chosen, root)
    program = entry_point(folder, chosen)
    console.print(f"{chosen.name}: {folder}")
    console.print(f"run it: dojoflow run --task <id> --agent-dir examples/command_agents --agent-command "
                  f"\"sh aide_start.sh\" --agent-bind {folder} --agent-env AIDE_BIN={program} --model <model>")
