"""``median_absolute_error``: a metric contributed by a package (entry-point group ``dojoflow.metrics``)."""

from __future__ import annotations

import numpy as np

from dojoflow.api import Metric


def _median_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.median(np.abs(np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float))))


MEDIAN_ABSOLUTE_ERROR = Metric("median_absolute_error", False, "value",
                               "Median over rows of |prediction - answer|; robust to a few wild predictions.",
                               _median_absolute_error)
