"""The contamination probe: the same task with a description that does not name it.

MLE-bench probes contamination by giving agents ``description_obfuscated.md`` (the competition rewritten
without its name, sponsor or story): an agent whose score drops on the obfuscated description may have been
recalling the competition rather than solving it. An episode's ``description`` variant is ``original`` (the
default) or ``obfuscated``:

- a task folder holding ``description_obfuscated.md`` (MLE-bench competitions bring one; the importer keeps
  it) gives that file;
- any other task gets :func:`paraphrase`: deterministic, no LLM - the title becomes "Task", the Overview's
  prose (where the dataset's name and story are) becomes one sentence built from the spec, and the words of
  the task's id and title that are not part of a column name are replaced by ``[name]`` everywhere else.
  Column names, the metric and the submission format stay, since the agent needs them.

The agent sees the variant both in its first observation and as ``data/description.md`` (a view of the public
data with only that file replaced, built once per prepared data: :func:`obfuscated_public`). The variant is
recorded in the result (``description_variant``), and reports never pool the two
(``dojoflow/reporting/pooling.py``); ``dojoflow contamination`` compares them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dojoflow.atomic import atomic_directory
from dojoflow.errors import UsageError
from dojoflow.tasks_catalog.spec import TaskSpec

ORIGINAL, OBFUSCATED = "original", "obfuscated"
VARIANTS = (ORIGINAL, OBFUSCATED)
OBFUSCATED_FILE = "description_obfuscated.md"
PLACEHOLDER = "[name]"
COMMON_WORDS = frozenset({
    "the", "and", "from", "with", "for", "of", "a", "an", "to", "in", "on", "by", "or", "its", "their", "at",
    "data", "dataset", "task", "predict", "prediction", "forecast", "classification", "regression", "type",
    "test", "train", "score", "value", "values", "target", "number", "count", "rate", "level", "price",
})


def description_variant(name: str) -> str:
    """``name`` checked against the known variants (a clear error for anything else)."""
    if name not in VARIANTS:
        raise UsageError(f"unknown description variant '{name}' (known: {', '.join(VARIANTS)})")
    return name


def _column_words(spec: TaskSpec, description: str) -> set[str]:
    """Words that are part of the task's columns: the spec's, and every back-quoted name of the description."""
    names = [spec.submission.id_column, *spec.submission.target_columns, *re.findall(r"`([^`\n]+)`", description)]
    return {w.lower() for name in names for w in re.split(r"[^A-Za-z0-9]+", name) if w}


def _name_words(spec: TaskSpec, description: str) -> list[str]:
    """The words that name the task: its id's and title's, less column words and common words."""
    columns = _column_words(spec, description)
    words = re.split(r"[^A-Za-z0-9]+", f"{spec.id} {spec.title}")
    first_heading = next((line for line in description.splitlines() if line.startswith("# ")), "")
    words += re.split(r"[^A-Za-z0-9]+", first_heading)
    out = {w.lower() for w in words if len(w) >= 3 and not w.isdigit()}
    return sorted(out - columns - COMMON_WORDS, key=lambda w: (-len(w), w))


def _sections(markdown: str) -> list[tuple[str, list[str]]]:
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in markdown.splitlines():
        if line.startswith("## "):
            sections.append((line, []))
        elif not line.startswith("# "):
            sections[-1][1].append(line)
    return sections


def paraphrase(spec: TaskSpec, description: str) -> str:
    """The description with the task's names removed (see the module docstring); deterministic."""
    targets = ", ".join(f"`{c}`" for c in spec.submission.target_columns)
    overview = (f"A {spec.task_type.replace('-', ' ')} task: predict {targets} for each row of the test data from "
                f"the other columns, scored by {spec.metric_name} ({spec.direction}).")
    names = _name_words(spec, description)
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in names) + r")(e?s)?\b", re.IGNORECASE) \
        if names else None

    def scrub(text: str) -> str:
        if pattern is None:
            return text
        # back-quoted spans are column and file names: kept as they are
        parts = re.split(r"(`[^`\n]*`)", text)
        return "".join(p if p.startswith("`") else pattern.sub(PLACEHOLDER, p) for p in parts)

    out = ["# Task", ""]
    for heading, lines in _sections(description):
        if heading.lower().startswith("## overview") or (not heading and any(line.strip() for line in lines)):
            out += ["## Overview", "", overview, ""] if heading or "## Overview" not in out else []
            continue
        if heading:
            out += [scrub(heading), *(scrub(line) for line in lines)]
    if "## Overview" not in out:
        out[2:2] = ["## Overview", "", overview, ""]
    return "\n".join(out).rstrip() + "\n"


def obfuscated_description(spec: TaskSpec) -> str:
    """The task's obfuscated description: its ``description_obfuscated.md``, else :func:`paraphrase`."""
    given = spec.folder / OBFUSCATED_FILE
    if given.is_file():
        return given.read_text()
    return paraphrase(spec, spec.description())


def task_description(spec: TaskSpec, variant: str) -> str:
    """The description an episode of ``variant`` shows."""
    return obfuscated_description(spec) if variant == OBFUSCATED else spec.description()


def obfuscated_public(spec: TaskSpec, public: Path) -> Path:
    """A view of ``public`` (hard links; copies across filesystems) whose ``description.md`` is the obfuscated
    one; built once next to ``public``'s prepared entry, rebuilt when the obfuscated text changes."""
    import hashlib
    import shutil

    text = obfuscated_description(spec)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    root = public.parent.parent / f"{public.parent.name}.obfuscated-{digest}"
    if (root / "public").is_dir():
        return root / "public"
    try:
        with atomic_directory(root, prefix=f".tmp-{public.parent.name}-obfuscated-") as tmp:
            for folder, _subdirs, files in os.walk(public):
                target = tmp / "public" / os.path.relpath(folder, public)
                target.mkdir(parents=True, exist_ok=True)
                for name in files:
                    if folder == str(public) and name == "description.md":
                        continue
                    try:
                        os.link(os.path.join(folder, name), target / name)
                    except OSError:
                        shutil.copy2(os.path.join(folder, name), target / name)
            (tmp / "public" / "description.md").write_text(text)
    except OSError:
        if not (root / "public").is_dir():  # not a concurrent episode that built the same view first
            raise
    return root / "public"
