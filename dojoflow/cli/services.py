"""``dojoflow serve``, ``deploy`` and ``ui``: the episode flow as a deployment, and the two UIs."""

from __future__ import annotations

import typer

from dojoflow.cli.common import console, prefect_ready
from dojoflow.config import get_settings


def serve(name: str = typer.Option("dojoflow", help="Deployment name (the episode flow's deployment).")) -> None:
    """Serve the episode flow as a deployment from this process (no work pool needed); Ctrl-C stops."""
    prefect_ready()
    from dojoflow.flows.prefect_episode import episode_flow

    console.print(f"serving deployment episode/{name}; sweeps use it with `deployment: episode/{name}`")
    episode_flow.serve(name=name, tags=["dojoflow"])


def deploy(pool: str = typer.Option("dojoflow", help="Work pool (created as a process pool if missing)."),
           name: str = typer.Option("dojoflow", help="Deployment name."),
           pool_type: str = typer.Option("process", "--type", help="Pool type when it is created: process, or "
                                         "docker (flow runs in containers of --image; the docker extra)."),
           image: str = typer.Option("dojoflow-worker:latest", help="Image of a docker pool's flow runs.")) -> None:
    """Deploy the episode flow to a work pool; start workers with `prefect worker start --pool POOL`."""
    prefect_ready()
    from dojoflow.flows.deployment import deploy_episode_flow

    variables = {"image": image, "image_pull_policy": "Never"} if pool_type == "docker" else None
    deployment_id = deploy_episode_flow(pool, name, variables, pool_type=pool_type)
    console.print(f"deployed episode/{name} ({deployment_id}) to work pool '{pool}'.\n"
                  f"Start a worker: prefect worker start --pool {pool}\n"
                  f"Use it in a sweep spec: deployment: episode/{name}")


def ui(prefect_port: int = typer.Option(4200, help="Port of the Prefect UI."),
       mlflow_port: int = typer.Option(5000, help="Port of the MLflow UI.")) -> None:
    """Start the Prefect server and the MLflow UI on localhost against dojoflow's stores."""
    from dojoflow.ui import serve_uis

    serve_uis(get_settings(), prefect_port, mlflow_port, console)


COMMANDS = {"serve": serve, "deploy": deploy, "ui": ui}
