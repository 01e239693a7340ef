"""The generation report: every candidate, the gates it passed or failed (with the reason), the yield."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Candidate:
    """One generated task and its verdict."""

    task_id: str
    family: str
    kept: bool = False
    gates: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # generation or preparation failed before the gates
    timings: dict[str, float] = field(default_factory=dict)
    train_rows: int | None = None
    usage: dict[str, Any] = field(default_factory=dict)  # LLM generator: tokens, cost, calls

    @property
    def reasons(self) -> list[str]:
        """Why the candidate was rejected (empty when kept)."""
        failed = [f"{g['name']}: {g['reason']}" for g in self.gates if not g["passed"]]
        return ([self.error] if self.error else []) + failed


@dataclass
class GenerationReport:
    """What one ``dojoflow synth`` run generated and kept."""

    generator: str
    version: str
    seed_task: str
    seed: int
    requested: int
    dest: str
    candidates: list[Candidate] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    dna: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    path: str = ""

    @property
    def kept(self) -> list[str]:
        """Ids of the tasks kept."""
        return [c.task_id for c in self.candidates if c.kept]

    @property
    def yield_rate(self) -> float:
        """Kept / generated."""
        return len(self.kept) / len(self.candidates) if self.candidates else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with the yield and each rejection's reasons."""
        data = asdict(self)
        data["kept"] = self.kept
        data["generated"] = len(self.candidates)
        data["yield"] = round(self.yield_rate, 4)
        for entry, candidate in zip(data["candidates"], self.candidates, strict=True):
            entry["reasons"] = candidate.reasons
        return data

    def markdown(self) -> str:
        """A readable summary."""
        lines = [f"# Generation report: {self.generator} {self.version} from `{self.seed_task}` (seed {self.seed})",
                 "", f"Generated {len(self.candidates)}, kept {len(self.kept)} (yield {self.yield_rate:.0%}) in "
                 f"{self.wall_s:.1f} s; tasks in `{self.dest}`.", "",
                 "| task | family | train rows | kept | reasons |", "| --- | --- | --- | --- | --- |"]
        for c in self.candidates:
            lines.append(f"| {c.task_id} | {c.family} | {c.train_rows if c.train_rows is not None else '-'} | "
                         f"{'yes' if c.kept else 'no'} | {'; '.join(c.reasons) or '-'} |")
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> Path:
        """Write ``<name>.json`` and ``<name>.md`` under ``folder``; returns the JSON path."""
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.generator}-{self.seed_task}-s{self.seed}"
        path = folder / f"{name}.json"
        self.path = str(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, default=str) + "\n")
        (folder / f"{name}.md").write_text(self.markdown())
        return path
