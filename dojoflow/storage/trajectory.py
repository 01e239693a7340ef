"""Trajectories as JSON Lines: one header line for the episode, then one line per step."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dojoflow.atomic import atomic_file
from dojoflow.dojo.records import StepRecord


def write_trajectory(path: Path, episode: dict[str, Any], steps: Iterable[StepRecord]) -> Path:
    """Write the episode header and its steps; values that JSON cannot hold are written as text."""
    with atomic_file(path) as tmp, tmp.open("w") as fh:  # a reader never sees half a trajectory
        fh.write(json.dumps({"kind": "episode", **episode}, default=str) + "\n")
        for step in steps:
            fh.write(json.dumps({"kind": "step", **asdict(step)}, default=str) + "\n")
    return path


def read_trajectory(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Inverse of :func:`write_trajectory`: (episode header, step dicts)."""
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return lines[0], lines[1:]
