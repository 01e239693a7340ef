"""The plagiarism flag: how much of the agent's final code is found in a task's reference solutions.

MLE-bench compares each submission's code with the competition's top public notebooks (Dolos) and
disqualifies at 60% similarity. dojoflow uses copydetect, which implements the same winnowing
fingerprints as MOSS and Dolos: identifiers and strings are normalised away (renaming variables does not
hide a copy), k-grams of ``NOISE_K`` tokens are hashed and winnowed so that any shared run of
``GUARANTEE_T`` tokens is found. The score is the largest fraction of the agent's code tokens that one
corpus file contains (``similarity``, 0-1); it is flagged at :data:`DEFAULT_THRESHOLD` and never changes a
score.

The corpus of a task (:func:`corpus`):

- the files in the task folder's ``solutions/`` (``.py``, ``.ipynb``, ``.R``...): shipped with a task;
- the files in ``$DOJOFLOW_HOME/solutions/<task-id>/``: what a user provides, e.g. the notebooks of an
  imported MLE-bench competition's ``kernels.txt``;
- for the built-in tasks, their reference solutions: the baseline agent's scripts for the task (the honest
  standard solution dojoflow itself writes). A baseline episode is not compared with its own scripts.

Notebooks are compared on their code cells.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dojoflow.dojo.env import MLEEnvironment

DEFAULT_THRESHOLD = 0.6  # MLE-bench's disqualification threshold
NOISE_K = 25  # copydetect's defaults: matches shorter than this many tokens are noise ...
GUARANTEE_T = 30  # ... and any match this long is found
CODE_SUFFIXES = (".py", ".ipynb", ".r", ".jl", ".scala", ".java", ".cpp", ".c", ".js", ".ts")
SOLUTIONS_DIR = "solutions"
BUILTIN_AUTHOR = "baseline"  # the agent that writes the built-in reference solutions


@dataclass(frozen=True)
class Source:
    """One file of code: its name (the extension picks the tokenizer) and its text."""

    name: str
    text: str


def notebook_code(text: str) -> str:
    """The code cells of a Jupyter notebook, in order (magics and shell lines dropped)."""
    cells = json.loads(text).get("cells", [])
    lines = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        lines += [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines) + "\n"


def read_source(path: Path) -> Source | None:
    """``path`` as code (a notebook's code cells as Python); None for what cannot be read."""
    try:
        text = path.read_text(errors="replace")
        if path.suffix.lower() == ".ipynb":
            return Source(path.with_suffix(".py").name, notebook_code(text))
    except (OSError, ValueError, AttributeError):
        return None
    return Source(path.name, text)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in CODE_SUFFIXES)


def builtin_solutions(env: MLEEnvironment) -> list[Source]:
    """The built-in task's reference solutions: the baseline's scripts (every model of its ladder)."""
    from dojoflow.agents.baseline import MODEL_LADDER, write_script
    from dojoflow.dojo.observation import describe_data
    from dojoflow.tasks_catalog import builtin

    if not env.spec.folder.resolve().is_relative_to(Path(builtin.__file__).parent.resolve()):
        return []
    info = describe_data(env.spec, env.feedback_data or env.data)
    return [Source(f"reference-{label}.py", write_script(info, index, 0))
            for index, (label, _, _) in enumerate(MODEL_LADDER)]


def corpus(env: MLEEnvironment, agent: str = "") -> list[Source]:
    """The reference solutions the agent's code is compared with (see the module docstring)."""
    files = _files(env.spec.folder / SOLUTIONS_DIR) + _files(env.settings.home / SOLUTIONS_DIR / env.spec.id)
    sources = [s for s in (read_source(p) for p in files) if s is not None]
    if agent != BUILTIN_AUTHOR:
        sources += builtin_solutions(env)
    return sources


def similarity(code: Source, reference: Source) -> float:
    """The fraction of ``code``'s tokens that are found in ``reference`` (copydetect's winnowing)."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # copydetect imports pyplot (for its HTML report): never a GUI
    from copydetect import CodeFingerprint, compare_files

    window = GUARANTEE_T - NOISE_K + 1
    left = CodeFingerprint(code.name, NOISE_K, window, fp=io.StringIO(code.text))
    right = CodeFingerprint(reference.name, NOISE_K, window, fp=io.StringIO(reference.text))
    if not left.hashes or not right.hashes:
        return 0.0
    _, similarities, _ = compare_files(left, right)
    return float(similarities[0])


def best_match(code: list[Source], references: list[Source]) -> tuple[float, str, str]:
    """(highest similarity, the agent's file, the reference file) over all pairs; (0, "", "") for none."""
    best = (0.0, "", "")
    for mine in code:
        for reference in references:
            score = similarity(mine, reference)
            if score > best[0]:
                best = (score, mine.name, reference.name)
    return round(best[0], 4), best[1], best[2]
