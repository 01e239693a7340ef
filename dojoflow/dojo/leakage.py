"""The data-usage and data-leakage flags (MLE-STAR's two checkers), by static analysis of the final code
plus the access log of the steps (``infra/sandbox/access.py``).

- ``data-usage``: the final code uses the provided training data - its access log shows a read of a
  ``data/`` file other than the test inputs, the sample submission and the description, or its source
  names a file with ``train`` in its name (native readers, such as OpenCV's, are not in the access log).
  Code that never touches the training data (a hard-coded answer table, a model loaded from elsewhere) is
  flagged.
- ``leakage``: no model or preprocessing step is fitted on what it must not see. The code's assignments are
  followed (taint analysis over the module's AST): a value read from a file whose name has ``test`` in it
  (and not ``train``) is *test-derived*; the held-out outputs of ``train_test_split`` (its second, fourth...
  results) are *validation-derived*; anything computed from either is too. A call to ``fit``,
  ``fit_transform``, ``fit_predict`` or ``partial_fit`` with a test-derived or validation-derived argument is
  flagged with its line (fitting a scaler on the test inputs, pseudo-labelling on the test rows, training on
  the validation split that is meant to score the model).

What it cannot detect: leakage through names the analysis does not follow (attributes, containers mutated in
place, functions defined and called elsewhere, ``exec``), data read by native code or a child process, and
signal from feedback itself. What it over-flags: the common Kaggle idiom of concatenating train and test to
encode categories consistently, then splitting back, taints the training rows too (the detail shows the line,
so a reader can tell). A flag is evidence for a reader; it never changes a score.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit", "fit_resample"})
READ_FUNCTIONS = frozenset({"read_csv", "read_parquet", "read_json", "read_feather", "read_table", "read_excel",
                            "load", "loadtxt", "genfromtxt", "open", "imread", "read_pickle", "listdir", "glob"})
SPLIT_FUNCTIONS = frozenset({"train_test_split"})
TRAIN_FILE = re.compile(r"train", re.IGNORECASE)
TEST_FILE = re.compile(r"test", re.IGNORECASE)


@dataclass
class CodeFindings:
    """What the analysis found in one file of code."""

    parsed: bool = True
    training_files: list[str] = field(default_factory=list)  # string literals naming a training file
    test_fits: list[str] = field(default_factory=list)  # "line N: scaler.fit_transform(test)" ...
    validation_fits: list[str] = field(default_factory=list)


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _targets(target: ast.AST) -> list[ast.AST]:
    return list(target.elts) if isinstance(target, (ast.Tuple, ast.List)) else [target]


def _literals(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _reads_test(node: ast.AST) -> bool:
    """``node`` contains a read call of a test file (a literal path with ``test`` and not ``train``)."""
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        if _call_name(call) in READ_FUNCTIONS and any(
                TEST_FILE.search(s) and not TRAIN_FILE.search(s) for a in call.args[:1] for s in _literals(a)):
            return True
    return False


def analyse(source: str) -> CodeFindings:
    """Static findings for one Python file (see the module docstring)."""
    findings = CodeFindings()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        findings.parsed = False
        return findings
    findings.training_files = sorted({s for s in _literals(tree) if TRAIN_FILE.search(s)
                                      and ("." in s or "/" in s)})
    test: set[str] = set()
    validation: set[str] = set()
    # statements in source order (nested blocks included): assignments propagate taint, fits are checked
    nodes = sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign,
                                                                ast.Call, ast.For))),
                   key=lambda n: (n.lineno, n.col_offset))
    for node in nodes:
        if isinstance(node, ast.Call):
            if _call_name(node) in FIT_METHODS:
                used = set().union(*(_names(a) for a in [*node.args, *(k.value for k in node.keywords)])) \
                    if node.args or node.keywords else set()
                where = f"line {node.lineno}: {ast.unparse(node)[:120]}"
                if used & test or any(_reads_test(a) for a in node.args):
                    findings.test_fits.append(where)
                elif used & validation:
                    findings.validation_fits.append(where)
            continue
        value = node.iter if isinstance(node, ast.For) else node.value
        if value is None:
            continue
        targets = [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For)) else node.targets
        names = [t for target in targets for t in _targets(target)]
        assigned = {n for t in names for n in _names(t)}
        if isinstance(value, ast.Call) and _call_name(value) in SPLIT_FUNCTIONS and len(names) >= 2:
            held_out = {n for t in names[1::2] for n in _names(t)}  # X_tr, X_val, y_tr, y_val: the odd ones
            validation |= held_out
            test -= held_out
            continue
        used = _names(value)
        rebound = {t.id for t in names if isinstance(t, ast.Name)} if isinstance(node, ast.Assign) else set()
        if _reads_test(value) or used & test:
            test |= assigned
        else:
            test -= rebound  # a name rebound to something clean (``t["y"] = 1`` changes ``t``, not rebinds it)
        if used & validation:
            validation |= assigned
        else:
            validation -= rebound
    return findings


NOT_TRAINING = re.compile(r"test|sample_submission|description", re.IGNORECASE)


def reads_training_data(data_reads: list[str]) -> list[str]:
    """The files of the public data the access log shows read that hold training data: any file under
    ``data/`` but the test inputs, the sample submission and the description (an MLE-bench competition's
    training labels may be ``labels.csv``, its images ``train/*.jpg``)."""
    return [path for path in data_reads
            if path.startswith("data/") and not NOT_TRAINING.search(path.removeprefix("data/"))]
