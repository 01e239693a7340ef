"""Submission validation: every problem found, each as a message an agent can act on.

Validation runs before any scoring; a submission with any error is invalid and gets no score. Files are
read with pyarrow's multi-threaded CSV reader and checked with Arrow compute kernels (hash-based id
matching), so a million-row submission validates in a fraction of a second. Ids are compared as text, so
``7`` and ``7.0`` are reported as different ids instead of silently matching.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from dojoflow.tasks_catalog.spec import TaskSpec

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

MAX_EXAMPLES = 5
SNIFF_BYTES = 65536


@dataclass
class ValidationResult:
    """Outcome of validating one submission file against the expected ids."""

    errors: list[str] = field(default_factory=list)
    table: pa.Table | None = None  # the submission, when valid
    positions: pa.Array | None = None  # row of each expected id in ``table``, when valid
    format_ok: bool = False  # the file parsed and has exactly the expected columns

    @property
    def valid(self) -> bool:
        """No validation errors."""
        return not self.errors

    @cached_property
    def frame(self) -> pd.DataFrame | None:
        """The valid submission as a pandas frame indexed by id (converted on first use)."""
        if self.table is None:
            return None
        frame = self.table.to_pandas()
        return frame.set_index(frame.columns[0])


def _examples(values: pa.Array) -> str:
    """Up to MAX_EXAMPLES values, smallest first, for an error message."""
    import pyarrow.compute as pc

    shown = pc.take(values, pc.sort_indices(values)[:MAX_EXAMPLES]).to_pylist()
    return ", ".join(repr(v) for v in shown) + (", ..." if len(values) > MAX_EXAMPLES else "")


def _looks_binary(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if b"\x00" in head:
        return True
    try:
        head[:-4].decode("utf-8") if len(head) == SNIFF_BYTES else head.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


MIN_SIZE_LIMIT = 16 * 1024 * 1024
BYTES_PER_CELL = 64  # generous: an id or a prediction written with full float precision, plus quoting


def size_problem(path: Path, rows: int, columns: int) -> str | None:
    """Why a file is too big to be this task's submission (checked before it is read: a 200 MB file must
    not cost seconds and gigabytes to reject), or None."""
    try:
        size = path.stat().st_size
    except OSError:
        return None  # a missing file is reported by read_submission
    limit = max(MIN_SIZE_LIMIT, rows * columns * BYTES_PER_CELL)
    if size <= limit:
        return None
    return (f"submission file {path.name} is {size / 1e6:.1f} MB, more than the {limit / 1e6:.0f} MB a submission "
            f"of {rows} rows x {columns} columns can need: write one row per test id and only the expected "
            "columns")


def read_submission(path: Path, spec: TaskSpec) -> tuple[pa.Table | None, str | None]:
    """Read a submission CSV (id and text-valued columns as strings). Returns (table, None) or (None, error)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    if not path.is_file():
        return None, f"submission file not found: {path.name} (write your predictions to {path.name})"
    if path.stat().st_size == 0:
        return None, f"submission file {path.name} is empty"
    if _looks_binary(path):
        return None, f"submission file {path.name} is not a parseable CSV: it is not UTF-8 text"
    text_columns = [spec.submission.id_column]
    if spec.metric.text_predictions:
        text_columns += list(spec.submission.target_columns)
    options = pacsv.ConvertOptions(column_types={c: pa.string() for c in text_columns}, strings_can_be_null=True)
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0].removeprefix("CSV parse error: ") or type(exc).__name__
        return None, f"submission file {path.name} is not a parseable CSV: {reason}"
    return table.combine_chunks(), None


def _non_numeric(column: pa.ChunkedArray) -> tuple[pa.Array, pa.ChunkedArray]:
    """(values that are not numbers, the column as float64 with those as null) for a column Arrow read as text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(column, pa.string())
    as_float = pc.cast(pc.if_else(pc.match_substring_regex(
        pc.utf8_trim_whitespace(text), r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|Inf|infinity|Infinity)$"),
        text, None), pa.float64())
    bad = pc.filter(text, pc.and_(pc.is_null(as_float), pc.is_valid(text)))
    return pc.unique(bad), as_float


def validate_submission(path: Path, spec: TaskSpec,
                        expected_ids: pa.Array | pa.ChunkedArray | pd.Index) -> ValidationResult:
    """Validate the file at ``path`` against the spec's format and the ids of the test rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    result = ValidationResult()
    too_big = size_problem(Path(path), len(expected_ids), 1 + len(spec.submission.target_columns))
    if too_big:
        result.errors.append(too_big)
        return result
    table, error = read_submission(path, spec)
    if error:
        result.errors.append(error)
        return result
    if isinstance(expected_ids, pa.ChunkedArray):
        expected_ids = expected_ids.combine_chunks()
    elif not isinstance(expected_ids, pa.Array):
        expected_ids = pa.array([str(i) for i in expected_ids], pa.string())

    assert table is not None  # read_submission returns a table or an error
    sub = spec.submission
    expected_columns = [sub.id_column, *sub.target_columns]
    names = table.column_names
    duplicated_cols = sorted({c for c in names if names.count(c) > 1})
    missing_cols = [c for c in expected_columns if c not in names]
    extra_cols = [c for c in dict.fromkeys(names) if c not in expected_columns]
    if duplicated_cols:
        result.errors.append(f"duplicated column names: {', '.join(duplicated_cols)}")
    if missing_cols:
        result.errors.append(f"missing columns: {', '.join(missing_cols)} (expected columns: "
                             f"{', '.join(expected_columns)})")
    if extra_cols:
        result.errors.append(f"unexpected extra columns: {', '.join(map(str, extra_cols))}")
    if sub.id_column not in names or duplicated_cols:
        return result
    result.format_ok = not (missing_cols or extra_cols)

    ids = table.column(sub.id_column).combine_chunks()
    valid_ids = ids.drop_null()
    # two hash passes on the happy path: where each expected id is, and how many distinct ids there are
    positions = pc.index_in(expected_ids, value_set=valid_ids)
    distinct = len(pc.unique(valid_ids))
    if distinct < len(valid_ids):
        counts = pc.value_counts(valid_ids)
        duplicated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        result.errors.append(f"{len(duplicated)} duplicated ids, e.g. {_examples(duplicated)}")
    if positions.null_count:
        missing_ids = pc.filter(expected_ids, pc.is_null(positions))
        result.errors.append(f"{len(missing_ids)} ids of the test set are missing, e.g. {_examples(missing_ids)}")
    if distinct > len(expected_ids) - positions.null_count:  # some distinct ids matched nothing expected
        extra_ids = pc.unique(pc.filter(valid_ids, pc.invert(pc.is_in(valid_ids, value_set=expected_ids))))
        result.errors.append(f"{len(extra_ids)} ids are not in the test set, e.g. {_examples(extra_ids)}")
    if ids.null_count:
        result.errors.append(f"{ids.null_count} rows have an empty id")
    if table.num_rows != len(expected_ids):
        result.errors.append(f"wrong row count: {table.num_rows} rows, expected {len(expected_ids)} "
                             "(one per test id)")

    for column in (c for c in sub.target_columns if c in names):
        values = table.column(column)
        if spec.metric.prediction in ("rle", "external"):
            continue  # rle: an empty cell is an empty mask; external: the task's own grader checks values
        if spec.metric.text_predictions:
            if values.null_count:
                result.errors.append(f"column '{column}': {values.null_count} empty predictions")
            if spec.metric.prediction == "label":
                known = pa.array(list(sub.classes or ()), pa.string())
                unknown = pc.unique(pc.filter(values, pc.invert(pc.is_in(values, value_set=known))).drop_null())
                if len(unknown):
                    result.errors.append(f"column '{column}': {len(unknown)} labels are not known classes, e.g. "
                                         f"{_examples(unknown)} (classes: {', '.join(sub.classes or ())})")
            continue
        missing = values.null_count
        if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
            not_numbers, values = _non_numeric(values)
            if len(not_numbers):
                result.errors.append(f"column '{column}': {len(not_numbers)} values are not numbers, e.g. "
                                     f"{_examples(not_numbers)}")
        values = pc.cast(values, pa.float64())
        nan_count = missing + (pc.sum(pc.is_nan(values)).as_py() or 0)
        inf_count = pc.sum(pc.is_inf(values)).as_py() or 0
        if nan_count or inf_count:
            result.errors.append(f"column '{column}': {nan_count} NaN/empty and {inf_count} infinite values; "
                                 "every row needs a finite number")
        if spec.metric.prediction == "probability" and len(values):
            outside = pc.filter(values, pc.or_(pc.less(values, 0.0), pc.greater(values, 1.0)))
            if len(outside):
                result.errors.append(f"column '{column}': {len(outside)} probabilities outside [0, 1], e.g. "
                                     f"{_examples(pc.unique(outside))}")
    if spec.metric.rows_sum_to_one and result.valid:
        _check_row_sums(table, sub.id_column, list(sub.target_columns), result)
    if result.valid:
        result.table = table.select(expected_columns)
        result.positions = positions
    return result


ROW_SUM_TOLERANCE = 1e-2


def _check_row_sums(table: pa.Table, id_column: str, columns: list[str], result: ValidationResult) -> None:
    """Each row's class probabilities must sum to 1 (within ROW_SUM_TOLERANCE)."""
    import numpy as np
    import pyarrow.compute as pc

    sums = np.sum([pc.cast(table.column(c), "float64").to_numpy() for c in columns], axis=0)
    bad = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
    if len(bad):
        ids = table.column(id_column).to_pylist()
        examples = ", ".join(f"id {ids[i]!r} sums to {sums[i]:.4g}" for i in bad[:MAX_EXAMPLES])
        result.errors.append(f"{len(bad)} rows have probabilities that do not sum to 1 (tolerance "
                             f"{ROW_SUM_TOLERANCE:g}), e.g. {examples}")
