"""The task spec: one folder with ``task.yaml``, ``description.md``, ``prepare.py`` and ``leaderboard.csv``.

``task.yaml`` fields (all validated on load; an error names the file and the field):

```yaml
id: penguins-species
title: Palmer penguins - species
task_type: tabular-classification-multiclass
metric: accuracy
direction: higher-is-better        # explicit, must agree with the metric
submission:
  id_column: id
  target_columns: [species]
  classes: [Adelie, Chinstrap, Gentoo]   # label and multiclass-probability tasks
split:                                   # how prepare.py splits rows (seeded, deterministic)
  method: random                         # random (shuffled, stratified for classification) | time
  # time_column: date                    # required for method: time (test rows = the last period)
  test_fraction: 0.3
  public_fraction: 0.5                   # share of test rows scored during the episode
  seed: 0
inputs: {kind: tabular}                  # tabular | images (column: image, dir: images) | text (column: text)
# grader: {kind: mlebench, file: competition/grade.py, function: grade}   # external grader (imported tasks)
resources: {gpu: false, step_timeout_s: 120, memory_mb: 4096}
tags: {size: small, difficulty: easy, source: palmerpenguins, license: CC0-1.0}
leaderboard: {file: leaderboard.csv, provenance: reference}   # public_file: Kaggle's public board, if any
exposure:                                # where the labelled source data lives (could agent code reach it?)
  source: package                        # package (ships in an installed package) | external | generated | undeclared
  package_data: [palmerpenguins/data]    # <import name>/<folder>: hidden from every isolated sandbox
```

A task whose source data ships inside an installed package must list those folders under
``exposure.package_data``: agent code could otherwise rebuild the hidden answers by looking the test rows
up in the source (see ``tasks_catalog/exposure.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from dojoflow.errors import SpecFieldError, TaskSpecError
from dojoflow.tasks_catalog.kinds import TASK_KINDS, task_kind
from dojoflow.tasks_catalog.metrics import EXTERNAL, Metric, get_metric, has_metric, metric_names

TASK_TYPES = tuple(TASK_KINDS)  # the built-in kinds; see kinds.py (register_task_kind adds more)
SPLIT_METHODS = ("random", "time")
INPUT_KINDS = ("tabular", "images", "text")
GRADER_KINDS = ("mlebench", "sandmle", "mledojo")  # sandmle: an evaluator.py script (evaluator_script.py);
# mledojo: a CompetitionMetrics class (mledojo.py)
EXTERNAL_METRIC = "external"
DIRECTIONS = {"higher-is-better": True, "lower-is-better": False}
PROVENANCES = ("human", "reference")
SPEC_FILE = "task.yaml"
EXPOSURE_SOURCES = ("package", "external", "generated", "undeclared")


@dataclass(frozen=True)
class SubmissionFormat:
    """Which columns a submission has and what they hold."""

    id_column: str
    target_columns: tuple[str, ...]
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SplitConfig:
    """Deterministic split of the labelled rows into train / test and of the test rows into public / private."""

    test_fraction: float = 0.3
    public_fraction: float = 0.5
    seed: int = 0
    method: str = "random"  # "time": rows ordered by ``time_column``; the test rows are the last period
    time_column: str | None = None


@dataclass(frozen=True)
class Inputs:
    """What the features are: plain columns, image files named in ``column`` (under public/``dir``), or text."""

    kind: str = "tabular"
    column: str | None = None
    dir: str | None = None


@dataclass(frozen=True)
class GraderRef:
    """An external grading function (an imported MLE-bench ``grade(submission, answers) -> float``)."""

    kind: str
    file: str
    function: str = "grade"


@dataclass(frozen=True)
class Resources:
    """What an agent step may use."""

    gpu: bool = False
    step_timeout_s: float = 120.0
    memory_mb: int = 4096
    prepare_timeout_s: float = 1800.0  # the task's preparation (prepare.py) is stopped after this


@dataclass(frozen=True)
class LeaderboardRef:
    """Where the task's leaderboard is and whether it is human (Kaggle) or a reference population."""

    file: str = "leaderboard.csv"
    provenance: str = "reference"
    public_file: str | None = None  # a separate public board (Kaggle's, MLE-Dojo imports): feedback is placed there

    @property
    def boards(self) -> str:
        """Which leaderboards the task has: ``public+private`` or ``private`` (one board for everything)."""
        return "public+private" if self.public_file else "private"


@dataclass(frozen=True)
class Exposure:
    """Where a task's labelled source data lives and whether agent code could reach it.

    - ``package``: it ships inside installed packages, in the ``package_data`` folders (``<import
      name>/<folder>``), which every isolated sandbox hides;
    - ``external``: it lives outside anything a sandbox exposes (raw Kaggle downloads of an imported
      competition);
    - ``generated``: it exists only in the prepared (hidden) answers (synthetic tasks);
    - ``undeclared``: the task does not say (a warning in ``dojoflow tasks show``).
    """

    source: str = "undeclared"
    package_data: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskSpec:
    """A loaded, validated task. ``folder`` holds the spec and its files."""

    id: str
    title: str
    task_type: str
    metric_name: str
    higher_is_better: bool
    submission: SubmissionFormat
    split: SplitConfig
    resources: Resources
    leaderboard: LeaderboardRef
    tags: dict[str, str] = field(default_factory=dict)
    folder: Path = Path(".")
    inputs: Inputs = Inputs()
    grader: GraderRef | None = None
    exposure: Exposure = Exposure()

    @property
    def splits(self) -> tuple[str, ...]:
        """Named subsets the task belongs to (the comma-separated ``splits`` tag, e.g. ``lite``)."""
        return tuple(s.strip() for s in self.tags.get("splits", "").split(",") if s.strip())

    @property
    def metric(self) -> Metric:
        """The metric object (an ``external`` placeholder with the spec's direction for tasks with their own grader)."""
        if self.metric_name == EXTERNAL_METRIC:  # the task's own grader; direction as the spec states it
            return replace(EXTERNAL, higher_is_better=self.higher_is_better)
        return get_metric(self.metric_name)

    @property
    def description_path(self) -> Path:
        """The task description shown to agents."""
        return self.folder / "description.md"

    @property
    def prepare_path(self) -> Path:
        """The task's ``prepare.py``."""
        return self.folder / "prepare.py"

    @property
    def leaderboard_path(self) -> Path:
        """The task's leaderboard file."""
        return self.folder / self.leaderboard.file

    @property
    def direction(self) -> str:
        """``higher-is-better`` or ``lower-is-better``."""
        return "higher-is-better" if self.higher_is_better else "lower-is-better"

    def description(self) -> str:
        """The description's Markdown."""
        return self.description_path.read_text()


class FieldReader:
    """Reads typed fields from a YAML mapping, raising TaskSpecError that names the file and field path."""

    def __init__(self, file: Path, error: type[SpecFieldError] = TaskSpecError) -> None:
        self.file, self.error = str(file), error

    def fail(self, field_path: str, problem: str) -> SpecFieldError:
        """The error to raise for ``field_path``."""
        return self.error(self.file, field_path, problem)

    def mapping(self, data: Any, path: str) -> dict[str, Any]:
        """``data`` as a mapping (None reads as empty)."""
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise self.fail(path, f"must be a mapping, got {type(data).__name__}")
        return data

    def get(self, data: dict, key: str, path: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        """A typed field, or ``default``; a missing required field or a wrong type fails with the field's path."""
        full = f"{path}.{key}" if path else key
        if key not in data or data[key] is None:
            if default is ...:
                raise self.fail(full, "is required but missing")
            return default
        value = data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(full, f"must be {names}, got {value!r}")
        return value

    def known_keys(self, data: dict, path: str, known: tuple[str, ...]) -> None:
        """Fail on keys that are not in ``known`` (typos must not silently fall back to defaults)."""
        unknown = [str(k) for k in data if k not in known]
        if unknown:
            raise self.fail(path, f"unknown keys: {', '.join(unknown)} (known: {', '.join(known)})")

    def choice(self, data: dict, key: str, path: str, choices: Any) -> str:
        """A string field that must be one of ``choices``."""
        value = self.get(data, key, path, str)
        if value not in choices:
            raise self.fail(f"{path}.{key}" if path else key, f"'{value}' is not one of: {', '.join(choices)}")
        return value

    def fraction(self, data: dict, key: str, path: str, default: float) -> float:
        """A number strictly between 0 and 1."""
        value = self.get(data, key, path, float, default)
        if not 0.0 < value < 1.0:
            raise self.fail(f"{path}.{key}", f"must be strictly between 0 and 1, got {value}")
        return value


def load_spec(folder: Path) -> TaskSpec:
    """Load and validate the task in ``folder``. Raises TaskSpecError naming the file and field."""
    folder = Path(folder)
    spec_file = folder / SPEC_FILE
    r = FieldReader(spec_file)
    if not spec_file.is_file():
        raise r.fail("(file)", "task spec file not found")
    try:
        raw = yaml.safe_load(spec_file.read_text())
    except yaml.YAMLError as exc:
        raise r.fail("(file)", f"is not valid YAML: {exc}") from None
    data = r.mapping(raw, "(top level)")

    metric_name = r.get(data, "metric", "", str)
    if metric_name != EXTERNAL_METRIC and not has_metric(metric_name):
        raise r.fail("metric", f"unknown metric '{metric_name}'; known metrics: {', '.join(metric_names())}")
    direction = r.choice(data, "direction", "", DIRECTIONS)
    higher = DIRECTIONS[direction]
    grader_raw = data.get("grader")
    if metric_name == EXTERNAL_METRIC and grader_raw is None:
        raise r.fail("grader", f"metric '{EXTERNAL_METRIC}' needs a grader section (kind, file, function)")
    if metric_name != EXTERNAL_METRIC and higher != get_metric(metric_name).higher_is_better:
        raise r.fail("direction", f"'{direction}' contradicts metric '{metric_name}'")

    sub = r.mapping(r.get(data, "submission", "", dict), "submission")
    targets = r.get(sub, "target_columns", "submission", list)
    if not targets or not all(isinstance(t, str) for t in targets):
        raise r.fail("submission.target_columns", "must be a non-empty list of column names")
    classes = r.get(sub, "classes", "submission", list, None)
    submission = SubmissionFormat(
        id_column=r.get(sub, "id_column", "submission", str),
        target_columns=tuple(targets),
        classes=tuple(str(c) for c in classes) if classes is not None else None,
    )
    if metric_name != EXTERNAL_METRIC and get_metric(metric_name).prediction == "label" and not submission.classes:
        raise r.fail("submission.classes", f"metric '{metric_name}' scores labels, so the classes must be listed")

    split_raw = r.mapping(data.get("split"), "split")
    method = r.choice(split_raw, "method", "split", SPLIT_METHODS) if "method" in split_raw else "random"
    time_column = r.get(split_raw, "time_column", "split", str, None)
    if method == "time" and not time_column:
        raise r.fail("split.time_column", "is required when split.method is 'time'")
    if method != "time" and time_column:
        raise r.fail("split.time_column", "is only allowed with split.method: time")
    split = SplitConfig(
        test_fraction=r.fraction(split_raw, "test_fraction", "split", 0.3),
        public_fraction=r.fraction(split_raw, "public_fraction", "split", 0.5),
        seed=r.get(split_raw, "seed", "split", int, 0),
        method=method,
        time_column=time_column,
    )
    inputs_raw = r.mapping(data.get("inputs"), "inputs")
    inputs = Inputs(
        kind=r.choice(inputs_raw, "kind", "inputs", INPUT_KINDS) if "kind" in inputs_raw else "tabular",
        column=r.get(inputs_raw, "column", "inputs", str, None),
        dir=r.get(inputs_raw, "dir", "inputs", str, None),
    )
    if inputs.kind != "tabular" and not inputs.column:
        raise r.fail("inputs.column", f"is required for inputs of kind '{inputs.kind}'")
    if inputs.kind == "images" and not inputs.dir:
        raise r.fail("inputs.dir", "is required for inputs of kind 'images' (folder under public/)")
    grader = None
    if grader_raw is not None:
        g = r.mapping(grader_raw, "grader")
        grader = GraderRef(kind=r.choice(g, "kind", "grader", GRADER_KINDS), file=r.get(g, "file", "grader", str),
                           function=r.get(g, "function", "grader", str, "grade"))
    res_raw = r.mapping(data.get("resources"), "resources")
    resources = Resources(
        gpu=r.get(res_raw, "gpu", "resources", bool, False),
        step_timeout_s=r.get(res_raw, "step_timeout_s", "resources", float, 120.0),
        memory_mb=r.get(res_raw, "memory_mb", "resources", int, 4096),
        prepare_timeout_s=r.get(res_raw, "prepare_timeout_s", "resources", float, 1800.0),
    )
    lb_raw = r.mapping(data.get("leaderboard"), "leaderboard")
    leaderboard = LeaderboardRef(
        file=r.get(lb_raw, "file", "leaderboard", str, "leaderboard.csv"),
        provenance=r.choice(lb_raw, "provenance", "leaderboard", PROVENANCES) if "provenance" in lb_raw
        else "reference",
        public_file=r.get(lb_raw, "public_file", "leaderboard", str, None),
    )
    tags = {str(k): str(v) for k, v in r.mapping(data.get("tags"), "tags").items()}
    exposure_raw = r.mapping(data.get("exposure"), "exposure")
    r.known_keys(exposure_raw, "exposure", ("source", "package_data"))
    package_data = r.get(exposure_raw, "package_data", "exposure", list, [])
    if not all(isinstance(p, str) and "/" in p and ".." not in p.split("/") for p in package_data):
        raise r.fail("exposure.package_data", "list folders as '<import name>/<folder>', e.g. sklearn/datasets/data")
    exposure = Exposure(source=r.choice(exposure_raw, "source", "exposure", EXPOSURE_SOURCES)
                        if "source" in exposure_raw else "undeclared", package_data=tuple(package_data))
    if exposure.source == "package" and not exposure.package_data:
        raise r.fail("exposure.package_data", "a task whose source ships in a package must list its data folders")

    spec = TaskSpec(
        id=r.get(data, "id", "", str),
        title=r.get(data, "title", "", str),
        task_type=r.choice(data, "task_type", "", tuple(TASK_KINDS)),
        metric_name=metric_name,
        higher_is_better=higher,
        submission=submission,
        split=split,
        resources=resources,
        leaderboard=leaderboard,
        tags=tags,
        folder=folder,
        inputs=inputs,
        grader=grader,
        exposure=exposure,
    )
    if spec.id != folder.name:
        raise r.fail("id", f"'{spec.id}' must equal the task folder's name '{folder.name}'")
    for name, path in (("description.md", spec.description_path), ("prepare.py", spec.prepare_path)):
        if not path.is_file():
            raise TaskSpecError(str(path), "(file)", f"{name} is required next to {SPEC_FILE} but missing")
    if leaderboard.public_file and not (folder / leaderboard.public_file).is_file():
        raise r.fail("leaderboard.public_file", f"'{leaderboard.public_file}' not found in {folder}")
    if grader is not None and not (folder / grader.file).is_file():
        raise r.fail("grader.file", f"'{grader.file}' not found in {folder}")
    if not task_kind(spec.task_type).allows_targets(len(spec.submission.target_columns), spec.metric.rows_sum_to_one):
        raise r.fail("submission.target_columns", f"task type '{spec.task_type}' has one target column; use a "
                     "multilabel / multioutput task type for several")
    return spec
