"""A seed task's "task DNA": its structure with the meaning taken out (after SandMLE's data strategist).

The DNA keeps what makes a task the kind of task it is - the task type, the inputs (tabular, text, image
files), the metric and its direction, how many targets and classes, how many numeric and categorical
features, how much is missing, how imbalanced the classes are, whether it is split by time - and drops the
names, the domain and the values. Generators re-skin it into a new domain.

For imported competitions graded by their own code (``metric: external``) the metric is not known by name:
the DNA infers a dojoflow metric from the training target and the sample submission (``metric_source``
says so), which keeps the generated tasks gradable by dojoflow alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from dojoflow.tasks_catalog.preparation import PreparedData
from dojoflow.tasks_catalog.spec import EXTERNAL_METRIC, TaskSpec

FAMILY_OF_TYPE = {
    "tabular-classification-binary": "binary",
    "tabular-classification-multiclass": "multiclass",
    "tabular-classification-ordinal": "ordinal",
    "tabular-classification-multilabel": "multilabel",
    "tabular-regression": "regression",
    "tabular-regression-multioutput": "multioutput",
    "time-series-forecasting": "time-series",
    "image-classification": "multiclass",
    "text-classification": "binary",
}


@dataclass(frozen=True)
class TaskDNA:
    """The structure of a seed task (see the module docstring)."""

    seed_task: str
    task_type: str  # the dojoflow task type generated tasks get
    target: str  # binary | multiclass | ordinal | multilabel | regression | multioutput | time-series
    inputs: str  # tabular | text | images
    metric: str
    higher_is_better: bool
    metric_source: str  # "seed" or "inferred from the training target and sample submission"
    n_targets: int
    n_classes: int
    n_numeric: int
    n_categorical: int
    missing_rate: float
    minority_share: float  # share of the rarest class (classification); 0.5 otherwise
    n_train_seed: int
    n_test_seed: int
    positive_target: bool  # regression targets must stay positive (RMSLE, MAPE)

    def to_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def extract_dna(spec: TaskSpec, prepared: PreparedData) -> TaskDNA:
    """Read the DNA of ``spec`` from its spec and its prepared public data."""
    import pandas as pd

    train = pd.read_csv(prepared.public / "train.csv")
    n_test = sum(1 for _ in (prepared.public / "test.csv").open()) - 1
    sub = spec.submission
    targets = [c for c in sub.target_columns if c in train.columns]
    excluded = {sub.id_column, *sub.target_columns, *(c for c in (spec.split.time_column, spec.inputs.column) if c)}
    features = train[[c for c in train.columns if c not in excluded]]
    numeric = [c for c in features.columns if features[c].dtype.kind in "if"]
    n_categorical = features.shape[1] - len(numeric)
    missing = float(features.isna().to_numpy().mean()) if features.size else 0.0
    inputs = spec.inputs.kind
    if spec.metric_name == EXTERNAL_METRIC:
        target, metric, higher, n_classes = _infer_external(spec, prepared, train, targets)
        task_type = {"binary": "tabular-classification-binary", "multiclass": "tabular-classification-multiclass",
                     "regression": "tabular-regression"}[target]
        source = "inferred from the training target and sample submission"
    else:
        task_type, metric, higher, source = spec.task_type, spec.metric_name, spec.higher_is_better, "seed"
        target = FAMILY_OF_TYPE.get(spec.task_type, "regression" if spec.metric.prediction == "value" else "binary")
        if spec.task_type == "text-classification" and spec.submission.classes and len(spec.submission.classes) > 2:
            target = "multiclass"
        n_classes = len(sub.classes) if sub.classes else (2 if target in ("binary", "multilabel") else 0)
    minority = 0.5
    if target in ("binary", "multiclass", "ordinal") and targets:
        shares = train[targets[0]].value_counts(normalize=True)
        minority = float(shares.min()) if len(shares) else 0.5
    positive = metric.startswith(("rmsle", "mape")) or metric in ("msle",)
    return TaskDNA(seed_task=spec.id, task_type=task_type, target=target, inputs=inputs, metric=metric,
                   higher_is_better=higher, metric_source=source, n_targets=max(1, len(sub.target_columns)),
                   n_classes=n_classes, n_numeric=len(numeric), n_categorical=n_categorical,
                   missing_rate=round(missing, 4), minority_share=round(minority, 4), n_train_seed=len(train),
                   n_test_seed=max(0, n_test), positive_target=positive)


def _infer_external(spec: TaskSpec, prepared: PreparedData, train, targets: list[str]):
    """(target family, metric, higher_is_better, n_classes) of a task graded by its own code."""
    import pandas as pd

    if not targets:
        return "binary", "accuracy", True, 2
    y = train[targets[0]].dropna()
    sample_path = Path(prepared.public) / "sample_submission.csv"
    sample = pd.read_csv(sample_path, nrows=50) if sample_path.is_file() else None
    numeric = y.dtype.kind in "if" and y.nunique() > 20
    if numeric:
        return "regression", "rmse", False, 0
    classes = y.astype(str).unique()
    probabilities = sample is not None and targets[0] in sample and sample[targets[0]].dtype.kind == "f" \
        and not set(sample[targets[0]].astype(str)) <= set(classes)
    if len(classes) <= 2:
        return "binary", ("roc_auc" if probabilities else "accuracy"), True, 2
    return "multiclass", "accuracy", True, len(classes)
