"""Metric library. Every metric has an explicit direction and says what kind of prediction it scores.

The registry itself is cheap to import (task specs are validated against it when listing tasks);
scikit-learn is imported only when a metric is computed.

``prediction`` tells validation what a submission's target columns must hold:
- ``label``       - class labels from the task's known classes
- ``probability`` - numbers in [0, 1] (one column per class for multiclass; rows must sum to 1)
- ``value``       - finite numbers
- ``ranking``     - text: space-separated labels, best first (e.g. ``"b a c"``); scored by MAP@K, where only
                    the first K entries count
- ``external``    - anything: the task has its own grader (an imported MLE-bench ``grade`` function, see
                    ``mlebench.py``); columns are read as text and checked by that grader
- ``rle``         - text: a binary mask as Kaggle run-length encoding (see ``rle_decode``); empty text or a
                    missing value is the empty mask

Conventions shared by several metrics:

- Multiclass probabilities are an ``(n, k)`` matrix whose columns are the classes in sorted order. The answers
  may be class labels (integers ``0..k-1`` are used as column indices directly; any other labels are mapped
  to columns by sorted order, so all ``k`` must occur) or an ``(n, k)`` one-hot matrix.
- Label metrics receive labels as text from grading; labels that all read as numbers are compared as numbers
  (so ordinal labels such as ``"2"`` and ``"10"`` keep their numeric order for the quadratic weighted kappa).
- Masks: the answers carry their mask's shape as a prefix ``"HxW:"`` followed by the run-length encoding,
  e.g. ``"4x4:1 3 9 2"`` (``"4x4:"`` is an empty 4x4 mask). Predictions are plain Kaggle RLE; they may carry
  the same prefix, which then has to agree with the answer's shape. See ``rle_decode`` / ``rle_encode``.
- Correlations (``pearson``, ``spearman``): constant predictions score 0.0 (no relation can be shown);
  constant answers raise ``MetricInputError`` (the task cannot define a correlation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dojoflow.errors import MetricInputError, UnknownNameError, UsageError

MetricFn = Callable[[np.ndarray, np.ndarray], float]


TEXT_PREDICTIONS = frozenset({"label", "ranking", "rle", "external"})


@dataclass(frozen=True)
class Metric:
    """A scoring function with its direction and the prediction kind it expects."""

    name: str
    higher_is_better: bool
    prediction: str
    definition: str
    fn: MetricFn
    rows_sum_to_one: bool = False  # multiclass probabilities: each row's target columns must sum to 1

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """The score of ``y_pred`` against ``y_true``."""
        return float(self.fn(y_true, y_pred))

    @property
    def text_predictions(self) -> bool:
        """Predictions are text (labels, rankings, RLE masks), not numbers: read and compare them as text."""
        return self.prediction in TEXT_PREDICTIONS

    def is_better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b`` under this metric's direction."""
        return a > b if self.higher_is_better else a < b


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return accuracy_score(y_true, y_pred)


def _roc_auc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        raise MetricInputError("ROC-AUC is undefined when only one class is present in the answers")
    return roc_auc_score(y_true, y_pred)


def _log_loss(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    eps = 1e-15
    return log_loss(y_true, np.clip(y_pred, eps, 1 - eps), labels=[0, 1] if y_pred.ndim == 1 else None)


def _rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true, float) - np.asarray(y_pred, float)) ** 2)))


def _mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float))))


def _f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return f1_score(y_true, y_pred, average="macro")


# --- helpers ----------------------------------------------------------------------------------------------


def _numeric_if_possible(values: np.ndarray) -> np.ndarray:
    """``values`` as floats when every entry reads as a number, else unchanged."""
    values = np.asarray(values)
    try:
        return values.astype(float)
    except (TypeError, ValueError):
        return values


def _floats(values: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise MetricInputError(f"{what} must be numbers") from None


def _class_indices(y_true: np.ndarray, k: int) -> np.ndarray:
    """Column index (0..k-1) of each row's true class, following the module's multiclass convention."""
    y_true = np.asarray(y_true)
    if y_true.ndim == 2:
        if y_true.shape[1] != k:
            raise MetricInputError(f"the answers have {y_true.shape[1]} columns but the predictions have {k}")
        return np.argmax(_floats(y_true, "one-hot answers"), axis=1)
    numeric = _numeric_if_possible(y_true)
    if numeric.dtype.kind == "f" and np.all(numeric == np.round(numeric)) and np.all((numeric >= 0) & (numeric < k)):
        return numeric.astype(int)
    classes = np.unique(y_true)
    if len(classes) != k:
        raise MetricInputError(f"cannot map the answers' {len(classes)} labels onto {k} probability columns; "
                               "use labels "
                         f"0..{k - 1} or make every class occur in the answers")
    return np.searchsorted(classes, y_true)


def _matrix(y_pred: np.ndarray, what: str = "predictions") -> np.ndarray:
    y_pred = _floats(y_pred, what)
    if y_pred.ndim != 2:
        raise MetricInputError(f"{what} must be an (n, k) matrix, got shape {y_pred.shape}")
    return y_pred


def _columns(values: np.ndarray, what: str) -> np.ndarray:
    values = _floats(values, what)
    return values[:, None] if values.ndim == 1 else values


def _binary_auc(y: np.ndarray, score: np.ndarray, where: str = "") -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        raise MetricInputError(f"ROC-AUC is undefined when only one class is present in the answers{where}")
    return roc_auc_score(y, score)


# --- classification ---------------------------------------------------------------------------------------


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import balanced_accuracy_score

    return balanced_accuracy_score(y_true, y_pred)


def _f1_binary(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    y_true, y_pred = _numeric_if_possible(y_true), _numeric_if_possible(y_pred)
    for values in (y_true, y_pred):
        if values.dtype.kind != "f" or not set(np.unique(values)) <= {0.0, 1.0}:
            raise MetricInputError("binary F1 needs labels 0 and 1 (1 is the positive class)")
    return f1_score(y_true, y_pred, average="binary", pos_label=1.0, zero_division=0.0)


def _f1_average(average: str) -> MetricFn:
    def fn(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        from sklearn.metrics import f1_score

        return f1_score(y_true, y_pred, average=average, zero_division=0.0)

    return fn


def _roc_auc_ovr(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_pred = _matrix(y_pred)
    k = y_pred.shape[1]
    index = _class_indices(y_true, k)
    return float(np.mean([_binary_auc(index == j, y_pred[:, j], f" for class column {j}") for j in range(k)]))


def _roc_auc_mean_columnwise(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = _columns(y_true, "answers"), _columns(y_pred, "predictions")
    if y_true.shape != y_pred.shape:
        raise MetricInputError(f"answers of shape {y_true.shape} and predictions of shape {y_pred.shape} differ")
    return float(np.mean([_binary_auc(y_true[:, j], y_pred[:, j], f" of column {j}")
                          for j in range(y_true.shape[1])]))


def _log_loss_multiclass(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    eps = 1e-15
    y_pred = np.clip(_matrix(y_pred), eps, 1 - eps)
    y_pred = y_pred / y_pred.sum(axis=1, keepdims=True)
    index = _class_indices(y_true, y_pred.shape[1])
    return float(-np.mean(np.log(y_pred[np.arange(len(index)), index])))


def _quadratic_weighted_kappa(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import cohen_kappa_score

    y_true, y_pred = _numeric_if_possible(y_true), _numeric_if_possible(y_pred)
    if y_true.dtype != y_pred.dtype:
        y_true, y_pred = y_true.astype(str), y_pred.astype(str)
    if len(np.unique(np.concatenate([y_true, y_pred]))) < 2:
        raise MetricInputError("quadratic weighted kappa is undefined when answers and predictions are one same label")
    return cohen_kappa_score(y_true, y_pred, weights="quadratic")


# --- ranking ----------------------------------------------------------------------------------------------


def _as_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _map_at_k(k: int) -> MetricFn:
    def fn(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        scores = []
        for truth, ranking in zip(np.asarray(y_true, dtype=object).ravel(), np.asarray(y_pred, dtype=object).ravel()):
            # Kaggle's apk with one true label: only the first occurrence of the label scores, and repeated
            # labels keep their slots in the ranking (so repeats never add credit)
            labels = _as_text(ranking).split()[:k]
            truth = _as_text(truth)
            scores.append(1.0 / (labels.index(truth) + 1) if truth in labels else 0.0)
        if not scores:
            raise MetricInputError("MAP@K needs at least one row")
        return float(np.mean(scores))

    return fn


# --- regression -------------------------------------------------------------------------------------------


def _mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean((_floats(y_true, "answers") - _floats(y_pred, "predictions")) ** 2))


def _rmsle(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = _floats(y_true, "answers"), _floats(y_pred, "predictions")
    if np.any(y_true < 0) or np.any(y_pred < 0):
        raise MetricInputError("RMSLE is undefined for negative values (answers and predictions must be >= 0)")
    return float(np.sqrt(np.mean((np.log1p(y_true) - np.log1p(y_pred)) ** 2)))


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import r2_score

    return r2_score(_floats(y_true, "answers"), _floats(y_pred, "predictions"))


def _mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import mean_absolute_percentage_error

    y_true = _floats(y_true, "answers")
    if np.any(y_true == 0):
        raise MetricInputError("MAPE is undefined when an answer is 0")
    return 100.0 * mean_absolute_percentage_error(y_true, _floats(y_pred, "predictions"))


def _smape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = _floats(y_true, "answers"), _floats(y_pred, "predictions")
    denominator = np.abs(y_true) + np.abs(y_pred)
    ratio = np.divide(2 * np.abs(y_true - y_pred), denominator, out=np.zeros_like(denominator),
                      where=denominator != 0)
    return float(100.0 * np.mean(ratio))


def _correlation(kind: str) -> MetricFn:
    def fn(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        from scipy import stats

        y_true, y_pred = _floats(y_true, "answers").ravel(), _floats(y_pred, "predictions").ravel()
        if len(y_true) < 2 or np.all(y_true == y_true[0]):
            raise MetricInputError(f"{kind} correlation is undefined when the answers are constant")
        if np.all(y_pred == y_pred[0]):
            return 0.0
        result = stats.pearsonr(y_true, y_pred) if kind == "pearson" else stats.spearmanr(y_true, y_pred)
        return float(result[0])

    return fn


def _columnwise(fn: MetricFn) -> MetricFn:
    def columnwise(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        y_true, y_pred = _columns(y_true, "answers"), _columns(y_pred, "predictions")
        if y_true.shape != y_pred.shape:
            raise MetricInputError(f"answers of shape {y_true.shape} and predictions of shape {y_pred.shape} differ")
        return float(np.mean([fn(y_true[:, j], y_pred[:, j]) for j in range(y_true.shape[1])]))

    return columnwise


# --- masks (run-length encoding) ---------------------------------------------------------------------------


def _split_shape(text: str) -> tuple[tuple[int, int] | None, str]:
    """Split an optional ``"HxW:"`` prefix off an RLE string."""
    if ":" not in text:
        return None, text
    head, rle = text.split(":", 1)
    try:
        height, width = (int(part) for part in head.lower().split("x"))
    except ValueError:
        raise MetricInputError(f"bad mask shape prefix '{head}:' (expected 'HxW:', e.g. '4x4:')") from None
    if height <= 0 or width <= 0:
        raise MetricInputError(f"bad mask shape prefix '{head}:' (height and width must be positive)")
    return (height, width), rle


def rle_decode(rle: str | float | None, shape: tuple[int, int]) -> np.ndarray:
    """Decode Kaggle RLE into a boolean mask of ``shape`` (height, width).

    ``rle`` holds space-separated ``start length`` pairs; starts are 1-based pixel numbers counted in
    column-major order (down the first column, then the next). Empty text or a missing value is the empty mask.
    """
    height, width = shape
    flat = np.zeros(height * width, dtype=bool)
    text = _as_text(rle)
    if not text:
        return flat.reshape((height, width), order="F")
    try:
        numbers = [int(token) for token in text.split()]
    except ValueError:
        raise MetricInputError(f"RLE must be integers, got '{text[:40]}'") from None
    if len(numbers) % 2:
        raise MetricInputError("RLE must hold 'start length' pairs (an even count of numbers)")
    for start, length in zip(numbers[0::2], numbers[1::2]):
        if start < 1 or length < 1 or start - 1 + length > flat.size:
            raise MetricInputError(f"RLE run 'start {start} length {length}' is outside a {height}x{width} mask")
        flat[start - 1:start - 1 + length] = True
    return flat.reshape((height, width), order="F")


def rle_encode(mask: np.ndarray) -> str:
    """Kaggle RLE of a 2-D mask (inverse of ``rle_decode``); the empty mask is ``""``."""
    flat = np.concatenate([[False], np.asarray(mask, dtype=bool).ravel(order="F"), [False]])
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts, ends = changes[0::2], changes[1::2]
    return " ".join(f"{start} {end - start}" for start, end in zip(starts, ends))


def _mask_pairs(y_true: np.ndarray, y_pred: np.ndarray):
    y_true, y_pred = np.asarray(y_true, dtype=object).ravel(), np.asarray(y_pred, dtype=object).ravel()
    if len(y_true) != len(y_pred):
        raise MetricInputError(f"{len(y_true)} answer masks but {len(y_pred)} predicted masks")
    if not len(y_true):
        raise MetricInputError("mask metrics need at least one row")
    for truth, pred in zip(y_true, y_pred):
        shape, truth_rle = _split_shape(_as_text(truth))
        if shape is None:
            raise MetricInputError("answer masks must carry their shape as an 'HxW:' prefix, e.g. '4x4:1 3'")
        pred_shape, pred_rle = _split_shape(_as_text(pred))
        if pred_shape is not None and pred_shape != shape:
            raise MetricInputError(f"a predicted mask is {pred_shape[0]}x{pred_shape[1]} but its answer is "
                             f"{shape[0]}x{shape[1]}")
        yield rle_decode(truth_rle, shape), rle_decode(pred_rle, shape)


def _external(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    raise MetricInputError("metric 'external' is computed by the task's own grader, not from arrays")


def _dice(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    scores = []
    for truth, pred in _mask_pairs(y_true, y_pred):
        total = truth.sum() + pred.sum()
        scores.append(1.0 if total == 0 else 2.0 * np.logical_and(truth, pred).sum() / total)
    return float(np.mean(scores))


def _iou(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    scores = []
    for truth, pred in _mask_pairs(y_true, y_pred):
        union = np.logical_or(truth, pred).sum()
        scores.append(1.0 if union == 0 else np.logical_and(truth, pred).sum() / union)
    return float(np.mean(scores))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", True, "label", "Fraction of rows whose predicted label equals the true label.", _accuracy),
        Metric("f1_macro", True, "label", "Unweighted mean over classes of the per-class F1 score.", _f1_macro),
        Metric("roc_auc", True, "probability",
               "Area under the ROC curve of the predicted probability of the positive class.", _roc_auc),
        Metric("log_loss", False, "probability",
               "Mean negative log-likelihood of the true class; probabilities clipped to [1e-15, 1-1e-15].",
               _log_loss),
        Metric("rmse", False, "value", "Root mean squared error.", _rmse),
        Metric("mae", False, "value", "Mean absolute error.", _mae),
        # classification (labels)
        Metric("balanced_accuracy", True, "label",
               "Unweighted mean over the classes present in the answers of the per-class recall.",
               _balanced_accuracy),
        Metric("f1", True, "label",
               "F1 score of the positive class 1 in a binary task with labels 0 and 1 (0 when no true positive).",
               _f1_binary),
        Metric("f1_micro", True, "label",
               "F1 from true positives, false positives and false negatives pooled over all classes.",
               _f1_average("micro")),
        Metric("f1_weighted", True, "label",
               "Mean over classes of the per-class F1 score, weighted by each class's count in the answers.",
               _f1_average("weighted")),
        Metric("quadratic_weighted_kappa", True, "label",
               "Cohen's kappa with quadratic weights (labels that all read as numbers are ordered numerically).",
               _quadratic_weighted_kappa),
        # classification (probabilities)
        Metric("roc_auc_ovr", True, "probability",
               "Unweighted mean over classes of the one-vs-rest ROC-AUC of each class's probability column "
               "(columns in sorted class order).", _roc_auc_ovr, rows_sum_to_one=True),
        Metric("roc_auc_mean_columnwise", True, "probability",
               "Multi-label: unweighted mean over target columns of each column's ROC-AUC against its 0/1 answers.",
               _roc_auc_mean_columnwise),
        Metric("log_loss_multiclass", False, "probability",
               "Mean negative log of the true class's probability, rows of the (n, k) matrix clipped to "
               "[1e-15, 1-1e-15] and renormalised to sum to 1 (Kaggle's multiclass log loss).",
               _log_loss_multiclass, rows_sum_to_one=True),
        # ranking
        Metric("map@3", True, "ranking",
               "Mean over rows of 1/rank of the true label among the first 3 space-separated labels "
               "(0 if absent; a repeated label is counted once, at its first position).", _map_at_k(3)),
        Metric("map@5", True, "ranking",
               "Mean over rows of 1/rank of the true label among the first 5 space-separated labels "
               "(0 if absent; a repeated label is counted once, at its first position).", _map_at_k(5)),
        # regression (values)
        Metric("mse", False, "value", "Mean squared error.", _mse),
        Metric("rmsle", False, "value",
               "Root mean squared error of log(1 + value); negative answers or predictions raise MetricInputError.",
               _rmsle),
        Metric("r2", True, "value",
               "Coefficient of determination 1 - SS_res / SS_tot (sklearn r2_score; constant answers give 1 "
               "for a perfect fit, else 0).", _r2),
        Metric("mape", False, "value",
               "Mean absolute percentage error 100 * mean(|y - p| / |y|), in percent; an answer of 0 raises "
               "MetricInputError.", _mape),
        Metric("smape", False, "value",
               "Symmetric MAPE as Kaggle defines it: 100 * mean(2|y - p| / (|y| + |p|)), in percent, "
               "a row with y = p = 0 counting as 0.", _smape),
        Metric("pearson", True, "value",
               "Pearson correlation of predictions with answers (constant predictions score 0; constant "
               "answers raise MetricInputError).", _correlation("pearson")),
        Metric("spearman", True, "value",
               "Spearman rank correlation of predictions with answers (constant predictions score 0; constant "
               "answers raise MetricInputError).", _correlation("spearman")),
        Metric("rmse_mean_columnwise", False, "value",
               "Unweighted mean over target columns of each column's RMSE.", _columnwise(_rmse)),
        Metric("rmsle_mean_columnwise", False, "value",
               "Unweighted mean over target columns of each column's RMSLE.", _columnwise(_rmsle)),
        # segmentation masks
        Metric("dice", True, "rle",
               "Mean over rows of the Dice coefficient 2|A∩B| / (|A| + |B|) of the RLE masks, shape from the "
               "answer's 'HxW:' prefix; two empty masks score 1.", _dice),
        Metric("iou", True, "rle",
               "Mean over rows of the intersection over union |A∩B| / |A∪B| of the RLE masks, shape from the "
               "answer's 'HxW:' prefix; two empty masks score 1.", _iou),
    ]
}


BUILTIN_METRICS = frozenset(METRICS)  # the library as shipped (register_metric and plugins add to METRICS)

# Not in METRICS (it is no metric a task can pick by itself): tasks with their own grader (spec field
# ``grader``, e.g. imported MLE-bench competitions) name ``metric: external`` and get this placeholder.
EXTERNAL = Metric("external", True, "external",
                  "Scored by the task's own grader (spec field 'grader'); direction given by the task spec.", _external)


ENTRY_POINT_GROUP = "dojoflow.metrics"
PREDICTION_KINDS = ("label", "probability", "value", "ranking", "external", "rle")


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the library (a task spec can then name it); returns it, so it works as a decorator
    target: ``register_metric(Metric("my_score", True, "value", "...", fn))``.

    Installed packages can also declare metrics as entry points of the ``dojoflow.metrics`` group (the
    object is a :class:`Metric`); they are loaded the first time an unknown name is looked up.
    """
    if metric.prediction not in PREDICTION_KINDS:
        raise UsageError(f"metric '{metric.name}': prediction must be one of {', '.join(PREDICTION_KINDS)}")
    existing = METRICS.get(metric.name)
    if existing is not None and existing is not metric:
        raise UsageError(f"a metric named '{metric.name}' is already registered")
    METRICS[metric.name] = metric
    return metric


_PLUGIN_ERRORS: dict[str, str] = {}
_plugins_loaded = False


def _load_plugins() -> None:
    """Register the installed metrics once per process; one that fails to load is reported, not fatal."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import warnings
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in METRICS:
            continue
        try:
            register_metric(ep.load())
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break every task
            _PLUGIN_ERRORS[ep.name] = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"metric plugin '{ep.name}' ({ep.value}) failed to load: {exc}", RuntimeWarning,
                          stacklevel=3)


def has_metric(name: str) -> bool:
    """Whether ``name`` is a metric (installed plugins are looked at only for names not built in)."""
    if name not in METRICS:
        _load_plugins()
    return name in METRICS


def metric_names() -> list[str]:
    """Every registered metric name (built-in and installed)."""
    _load_plugins()
    return sorted(METRICS)


def get_metric(name: str) -> Metric:
    """Look up a metric by name; unknown names fail with the list of known ones."""
    if name not in METRICS:
        _load_plugins()
    try:
        return METRICS[name]
    except KeyError:
        if name in _PLUGIN_ERRORS:
            raise UnknownNameError(f"metric '{name}' is installed but failed to load: {_PLUGIN_ERRORS[name]}") from None
        raise UnknownNameError(f"unknown metric '{name}'; known metrics: {', '.join(metric_names())}") from None
