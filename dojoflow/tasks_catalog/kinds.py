"""Task kinds: what a task spec's ``task_type`` means, in one table.

Everything that depends on the kind of a task reads it from here: spec validation (how many target
columns), data preparation (stratified splits), and the scaffolds' choice of candidate models (MLE-STAR's
``family``). A new kind is one :func:`register_task_kind` call (or one entry of :data:`TASK_KINDS`); what the
baseline and the reference population do depends on the inputs and the metric's prediction kind, not on
this name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dojoflow.errors import UnknownNameError, UsageError

TARGETS = ("one", "many", "per-class")
PREPARE_RAW_ENV = "DOJOFLOW_PREPARE_RAW"  # inside a sandboxed preparation: where its raw data view is
# A spec tag saying dojoflow itself wrote the folder's prepare.py (synth's micro variants): it reads only its
# seed's prepared data, and the seed's own preparation went through its kind's path, so no raw data is looked up.
GENERATED_PREPARATION_TAG = ("preparation", "dojoflow")
FAMILIES = ("classification", "regression", "time-series", "image", "text", "external")


@dataclass(frozen=True)
class TaskKind:
    """A ``task_type``.

    - ``family``: the modelling family (which candidate models make sense);
    - ``targets``: ``one`` target column, ``many`` (multi-label / multi-output), or ``per-class`` (one column
      per class when the metric scores class probabilities, else one);
    - ``stratify``: random splits are stratified on the (single) target;
    - ``raw_data``: ``"module:function"`` giving, for a spec, the raw data folder its preparation reads
      (imported competitions: the user's Kaggle download). A kind that names one has third-party
      preparation code, which then runs sandboxed with only that folder and its outputs writable
      (``tasks_catalog/prepare_sandbox.py``).
    """

    name: str
    family: str
    targets: str = "one"
    stratify: bool = False
    description: str = ""
    raw_data: str = ""

    def raw_folder(self, spec: Any) -> Path | None:
        """The raw data folder ``spec``'s preparation reads, when this kind names how to find it (``spec``: a
        TaskSpec; not imported here, as spec.py imports this module). None also for a folder whose
        preparation dojoflow generated (``GENERATED_PREPARATION_TAG``)."""
        tag, value = GENERATED_PREPARATION_TAG
        if not self.raw_data or spec.tags.get(tag) == value:
            return None
        module, _, function = self.raw_data.partition(":")
        return Path(getattr(importlib.import_module(module), function)(spec))

    def allows_targets(self, count: int, probabilities_per_class: bool) -> bool:
        """Whether a submission with ``count`` target columns fits this kind."""
        if self.targets == "many":
            return count >= 1
        if self.targets == "per-class" and probabilities_per_class:
            return count >= 1
        return count == 1


TASK_KINDS: dict[str, TaskKind] = {k.name: k for k in [
    TaskKind("tabular-classification-binary", "classification", stratify=True,
             description="two classes; labels or the probability of the positive class"),
    TaskKind("tabular-classification-multiclass", "classification", "per-class", stratify=True,
             description="one of k classes; a label, or one probability column per class"),
    TaskKind("tabular-classification-multilabel", "classification", "many",
             description="any number of k labels per row; one column per label"),
    TaskKind("tabular-classification-ordinal", "classification", stratify=True,
             description="ordered classes (e.g. scored by quadratic weighted kappa)"),
    TaskKind("tabular-regression", "regression", description="one numeric target"),
    TaskKind("tabular-regression-multioutput", "regression", "many", description="several numeric targets"),
    TaskKind("time-series-forecasting", "time-series", "many",
             description="future values of a series; split by time"),
    TaskKind("image-classification", "image", "per-class", stratify=True, description="classes of image files"),
    TaskKind("text-classification", "text", "per-class", stratify=True, description="classes of text documents"),
    TaskKind("mlebench-import", "external", "many",
             description="an imported competition graded by its own grader",
             raw_data="dojoflow.tasks_catalog.mlebench:raw_dir_of"),
    TaskKind("mledojo-import", "external", "many",
             description="an imported MLE-Dojo competition graded by its own CompetitionMetrics class",
             raw_data="dojoflow.tasks_catalog.mledojo:raw_dir_of"),
    TaskKind("sandmle-import", "external", "many",
             description="an imported SandMLE task graded by its evaluator.py"),
]}


def register_task_kind(kind: TaskKind) -> TaskKind:
    """Add a task kind (a task spec can then name it as ``task_type``)."""
    if kind.family not in FAMILIES or kind.targets not in TARGETS:
        raise UsageError(f"task kind '{kind.name}': family must be one of {', '.join(FAMILIES)} and targets one "
                         f"of {', '.join(TARGETS)}")
    TASK_KINDS[kind.name] = kind
    return kind


def task_kind(name: str) -> TaskKind:
    """The kind named ``name`` (validated specs only name registered kinds)."""
    try:
        return TASK_KINDS[name]
    except KeyError:
        raise UnknownNameError(f"unknown task type '{name}'; known: {', '.join(TASK_KINDS)}") from None
