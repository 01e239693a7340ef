"""Virtual environments for agent programs, kept apart from dojoflow's own.

An agent package often pins versions that clash with the harness (``aideml`` pins ``humanize`` 4.8 where
Prefect needs >= 4.9, and lists torch, transformers, streamlit... as requirements). :func:`ensure_venv`
builds a separate, cached virtual environment for it: the agent package is installed without its
declared dependencies, then only the modules it really imports, at exact versions; a ``.pth`` file makes
the harness's own libraries (pandas, scikit-learn, numpy) importable behind them, so the code the agent
writes finds the same data-science stack as every other agent, without a second copy. The folder is
then bound read-only into the sandbox (``binds``) and the agent's entry point called by path.

Building needs the package index (pip); a cached environment needs nothing. ``AIDEML`` is the recipe
for the original AIDE, checked by ``tests/test_command_agent_aide.py``.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

from dojoflow.errors import DojoflowError

CACHE_ENV = "DOJOFLOW_AGENT_VENVS"
PIP_TIMEOUT_S = 900


class VenvError(DojoflowError):
    """An agent's virtual environment could not be built."""


@dataclass(frozen=True)
class VenvRecipe:
    """What goes into an agent's environment: ``packages`` without their dependencies, then ``requirements``
    (exact versions) with theirs; ``check`` is a module that must import afterwards."""

    name: str
    packages: tuple[str, ...]
    requirements: tuple[str, ...]
    check: str
    entry_point: str  # the program, under bin/


# The original AIDE from the package index: its core imports (aide/*.py, aide/backend, aide/utils); the ML
# libraries its requirements list are only what the code it writes may use.
AIDEML = VenvRecipe(
    name="aideml-0.2.2", packages=("aideml==0.2.2",),
    requirements=("black==24.3.0", "funcy==2.0", "humanize==4.8.0", "dataclasses-json==0.6.7", "omegaconf==2.4.0",
                  "shutup==0.3.0", "igraph==1.0.0", "genson==1.4.0", "backoff==2.2.1", "openai==3.57.0",
                  "anthropic==2.15.0"),  # rich, jsonschema, coolname, pandas, numpy: the harness's own
    check="aide.run", entry_point="aide")


RECIPES = {"aideml": AIDEML}


def cache_dir() -> Path:
    """``$DOJOFLOW_AGENT_VENVS``, else ``~/.cache/dojoflow/agent-venvs``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "dojoflow" / "agent-venvs")


def _python(folder: Path) -> Path:
    return folder / "bin" / "python"


def is_ready(folder: Path, recipe: VenvRecipe) -> bool:
    """Whether ``folder`` holds a working environment for ``recipe``."""
    python = _python(folder)
    if not python.exists():
        return False
    done = subprocess.run([str(python), "-c", f"import {recipe.check}"], capture_output=True, timeout=120)
    return done.returncode == 0


def _pip(folder: Path, args: list[str]) -> None:
    command = [sys.executable, "-m", "pip", "--python", str(_python(folder)), "install", "--quiet",
               "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise VenvError(f"pip could not install {' '.join(args)}: {tail}")


def ensure_venv(recipe: VenvRecipe, root: Path | None = None) -> Path:
    """The folder of ``recipe``'s environment under ``root`` (default :func:`cache_dir`), built if missing.

    One per harness environment (its folder name ends in a hash of ``sys.prefix``): the environment's ``.pth``
    points at the harness's own libraries, and a sandbox exposes only the harness that runs it, so an
    environment built by another checkout's harness would miss them."""
    import hashlib

    harness_id = hashlib.sha256(str(Path(sys.prefix).resolve()).encode()).hexdigest()[:8]
    folder = (root or cache_dir()) / f"{recipe.name}-{harness_id}"
    if is_ready(folder, recipe):
        return folder
    venv.EnvBuilder(clear=True, with_pip=False, symlinks=True).create(folder)
    pure = subprocess.run([str(_python(folder)), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    harness = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(pure, "dojoflow-harness-libraries.pth").write_text("".join(f"{p}\n" for p in harness))
    _pip(folder, ["--no-deps", *recipe.packages])
    _pip(folder, list(recipe.requirements))
    if not is_ready(folder, recipe):
        raise VenvError(f"the environment {folder} was built but `import {recipe.check}` fails in it")
    return folder


def entry_point(folder: Path, recipe: VenvRecipe) -> Path:
    """The recipe's program in the environment."""
    return folder / "bin" / recipe.entry_point
