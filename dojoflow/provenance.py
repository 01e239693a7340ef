"""How a result was obtained: software, hardware, budgets, model, feedback protocol, grading mode.

Two results are comparable only when they were obtained the same way: a score under test-derived
feedback is not a score without it; a 6-step budget is not a 20-step one; a model behind another endpoint
is another agent. Every episode result carries its :func:`episode_provenance`, the results table stores it
with a short :func:`provenance_key` over what decides comparability, and ``dojoflow report`` refuses to
pool rows whose keys differ unless asked to (and never pools feedback protocols). What the report prints
is the block itself, so a reader sees the conditions next to the numbers.

Software is read from package metadata (no library is imported for it); the commit is the checkout's
``git rev-parse HEAD`` when dojoflow runs from one, with a ``+dirty`` mark for uncommitted changes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dojoflow.dojo.env import MLEEnvironment

LIBRARIES = ("prefect", "mlflow", "scikit-learn", "numpy", "pandas", "pyarrow", "scipy", "torch", "lightgbm",
             "xgboost")
GIT_TIMEOUT_S = 5.0


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def commit() -> str:
    """The dojoflow checkout's commit (``<sha>+dirty`` with uncommitted changes), or "" outside a checkout."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return ""
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=GIT_TIMEOUT_S).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=GIT_TIMEOUT_S).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{sha}+dirty" if sha and dirty else sha


@functools.lru_cache(maxsize=1)
def software() -> dict[str, Any]:
    """Dojoflow's version and commit, Python's, and the versions of the libraries that shape results."""
    from dojoflow import __version__

    libraries = {name: v for name in LIBRARIES if (v := _version(name)) is not None}
    return {"dojoflow": __version__, "commit": commit(), "python": platform.python_version(),
            "libraries": libraries}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_names() -> list[str]:
    import shutil

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


@functools.lru_cache(maxsize=1)
def hardware() -> dict[str, Any]:
    """CPU model and cores, memory, GPUs (by nvidia-smi, where installed)."""
    try:
        memory_gb = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    except (ValueError, OSError):
        memory_gb = None
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": memory_gb, "gpus": _gpu_names(),
            "machine": platform.machine()}


def episode_provenance(env: MLEEnvironment, agent_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance block of one episode (see the module docstring)."""
    from dojoflow.llm.client import BASE_URL_ENV, DEFAULT_BASE_URL
    from dojoflow.tasks_catalog.grading import grading_mode

    options = dict(agent_options or {})
    model = str(options.get("model") or "")
    endpoint = str(options.get("base_url") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL) if model else ""
    return {
        "software": software(),
        "hardware": hardware(),
        "budgets": {"max_steps": env.max_steps, "wall_time_s": env.wall_time_s, "cost_budget_usd": env.cost_budget_usd,
                    "token_budget": options.get("token_budget"), "step_timeout_s": env.limits.timeout_s,
                    "memory_mb": env.limits.memory_mb},
        "model": model,
        "endpoint": endpoint,
        "feedback_protocol": env.feedback.name,
        "grading_mode": grading_mode(env.spec),  # how the final grade judges (see grading.GRADING_MODES)
        "leaderboard_provenance": env.spec.leaderboard.provenance,
    }


def provenance_key(provenance: dict[str, Any]) -> str:
    """A short hash of ``provenance``: results with different keys are not pooled silently."""
    return hashlib.sha256(json.dumps(provenance, sort_keys=True, default=str).encode()).hexdigest()[:12]


def differences(blocks: list[dict[str, Any]]) -> list[str]:
    """The dotted names of the fields that differ between provenance blocks (for an error that says why)."""
    def flat(block: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in block.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = json.dumps(value, sort_keys=True, default=str)
        return out

    flats = [flat(b) for b in blocks]
    names = sorted({k for f in flats for k in f})
    return [n for n in names if len({f.get(n) for f in flats}) > 1]
