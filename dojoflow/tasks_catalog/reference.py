"""Reference leaderboards: built reproducibly from a population of honest solutions.

The built-in tasks have no human (Kaggle) leaderboard. Instead of inventing one, we train a population of
ordinary scikit-learn solutions - linear models, nearest neighbours, trees, forests, boosting, naive
Bayes, SVMs, small MLPs and trivial baselines, each over a small grid of settings - on the public
training data, predict the test rows, and score each on the private part (``score``, used for the final
grade) and on the public part (``public_score``, used to place feedback during an episode).

Every such leaderboard is labelled ``provenance: reference`` in the task spec and in the CSV header and is
reported as "reference" wherever it is shown: it measures an agent against a spread of honest standard
solutions, not against people. Rebuild with ``dojoflow tasks build-leaderboard ID``.

Task kinds beyond one tabular target:

- several target columns (multi-label, multi-output regression): one model of each setting per column;
- ``split.method: time``: the time column becomes numeric features (elapsed days, year, month, day of year
  and its sine/cosine), so linear models extrapolate the trend and trees learn the season;
- ``inputs.kind: images``: the image files are read as grey-level pixel vectors (flattened); with more
  than ``MAX_RAW_FEATURES`` pixels they are projected to ``PCA_COMPONENTS`` principal components first;
- ``inputs.kind: text``: TF-IDF / binary bag-of-words (word and character n-grams) with linear models and
  naive Bayes (a separate population of about 60 settings);
- more than ``LARGE_TRAIN_ROWS`` training rows: the kernel SVMs (quadratic cost) are replaced by other
  settings, so the population keeps its size and finishes in minutes.
"""

from __future__ import annotations

import csv
import io
import itertools
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dojoflow.tasks_catalog.grading import answer_table, score_predictions
from dojoflow.tasks_catalog.preparation import PreparedData
from dojoflow.tasks_catalog.spec import TaskSpec

Factory = Callable[[int], Any]
LARGE_TRAIN_ROWS = 4000
MAX_RAW_FEATURES = 256  # wider inputs (e.g. 32x32 images) go through PCA to PCA_COMPONENTS first
PCA_COMPONENTS = 64


def _classifiers(large: bool = False) -> Iterator[tuple[str, Factory]]:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    yield "dummy-prior", lambda s: DummyClassifier(strategy="prior")
    yield "gaussian-nb", lambda s: GaussianNB()
    yield "lda", lambda s: LinearDiscriminantAnalysis()
    for c in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0):
        yield f"logreg-C{c}", lambda s, c=c: LogisticRegression(C=c, max_iter=2000)
    for k in (1, 3, 5, 9, 15, 25, 50):
        yield f"knn-k{k}", lambda s, k=k: KNeighborsClassifier(n_neighbors=k)
    for depth in (1, 2, 3, 4, 6, 8, None):
        yield f"tree-depth{depth}", lambda s, d=depth: DecisionTreeClassifier(max_depth=d, random_state=s)
    for n, depth in itertools.product((10, 50, 200), (3, None)):
        yield f"rf-n{n}-depth{depth}", lambda s, n=n, d=depth: RandomForestClassifier(n, max_depth=d, random_state=s)
        yield f"et-n{n}-depth{depth}", lambda s, n=n, d=depth: ExtraTreesClassifier(n, max_depth=d, random_state=s)
    for lr, iters in itertools.product((0.03, 0.1, 0.3), (50, 200)):
        yield f"hgb-lr{lr}-it{iters}", lambda s, lr=lr, it=iters: HistGradientBoostingClassifier(
            learning_rate=lr, max_iter=it, random_state=s)
    for c in (0.1, 1.0, 10.0):
        if large:
            yield f"logreg-balanced-C{c}", lambda s, c=c: LogisticRegression(C=c, class_weight="balanced",
                                                                             max_iter=2000)
        else:
            yield f"svc-rbf-C{c}", lambda s, c=c: SVC(C=c, probability=True, random_state=s)
    for k in (5, 15):
        yield f"knn-k{k}-distance", lambda s, k=k: KNeighborsClassifier(n_neighbors=k, weights="distance")
    for hidden in ((16,), (32,), (128,), (64, 32)):
        yield f"mlp-{'x'.join(map(str, hidden))}", lambda s, h=hidden: MLPClassifier(
            hidden_layer_sizes=h, max_iter=1000, random_state=s)


def _regressors(large: bool = False) -> Iterator[tuple[str, Factory]]:
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import ExtraTreesRegressor, HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Lasso, LinearRegression, Ridge
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.svm import SVR
    from sklearn.tree import DecisionTreeRegressor

    yield "dummy-mean", lambda s: DummyRegressor()
    yield "dummy-median", lambda s: DummyRegressor(strategy="median")
    yield "linear", lambda s: LinearRegression()
    for a in (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0):
        yield f"ridge-a{a}", lambda s, a=a: Ridge(alpha=a)
    for a in (0.1, 1.0, 10.0, 100.0):
        yield f"lasso-a{a}", lambda s, a=a: Lasso(alpha=a, max_iter=10000)
    for k in (1, 3, 5, 9, 15, 25, 50):
        yield f"knn-k{k}", lambda s, k=k: KNeighborsRegressor(n_neighbors=k)
    for depth in (1, 2, 3, 4, 6, 8, None):
        yield f"tree-depth{depth}", lambda s, d=depth: DecisionTreeRegressor(max_depth=d, random_state=s)
    for n, depth in itertools.product((10, 50, 200), (3, None)):
        yield f"rf-n{n}-depth{depth}", lambda s, n=n, d=depth: RandomForestRegressor(n, max_depth=d, random_state=s)
        yield f"et-n{n}-depth{depth}", lambda s, n=n, d=depth: ExtraTreesRegressor(n, max_depth=d, random_state=s)
    for lr, iters in itertools.product((0.03, 0.1, 0.3), (50, 200)):
        yield f"hgb-lr{lr}-it{iters}", lambda s, lr=lr, it=iters: HistGradientBoostingRegressor(
            learning_rate=lr, max_iter=it, random_state=s)
    for c in (1.0, 100.0, 1000.0):
        if large:
            k = int(c ** 0.5) + 2  # 3, 12, 33 neighbours
            yield f"knn-k{k}-distance", lambda s, k=k: KNeighborsRegressor(n_neighbors=k, weights="distance")
        else:
            yield f"svr-rbf-C{c}", lambda s, c=c: SVR(C=c)
    for hidden in ((16,), (32,), (128,), (64, 32)):
        yield f"mlp-{'x'.join(map(str, hidden))}", lambda s, h=hidden: MLPRegressor(
            hidden_layer_sizes=h, max_iter=3000, learning_rate_init=0.01, random_state=s)


def _preprocessor(features):
    """Median-impute and scale numeric columns, one-hot encode the others (unknown categories ignored)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in features.columns if features[c].dtype.kind in "if"]
    categorical = [c for c in features.columns if c not in numeric]
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), categorical),
    ])


def _text_population() -> Iterator[tuple[str, Factory, Any]]:
    """(name, model factory, vectorizer factory) for text inputs."""
    from sklearn.dummy import DummyClassifier
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.naive_bayes import ComplementNB, MultinomialNB

    vectorizers = {
        "tfidf-word": lambda: TfidfVectorizer(sublinear_tf=True, min_df=2),
        "tfidf-word12": lambda: TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2)),
        "tfidf-char24": lambda: TfidfVectorizer(sublinear_tf=True, min_df=2, analyzer="char_wb", ngram_range=(2, 4)),
        "bow-binary": lambda: CountVectorizer(binary=True, min_df=2),
    }
    yield "dummy-prior", lambda s: DummyClassifier(strategy="prior"), vectorizers["bow-binary"]
    for vname, vec in vectorizers.items():
        for c in (0.1, 0.3, 1.0, 3.0, 10.0, 30.0):
            yield f"{vname}-logreg-C{c}", lambda s, c=c: LogisticRegression(C=c, max_iter=3000), vec
        for a in (0.1, 0.3, 1.0):
            yield f"{vname}-mnb-a{a}", lambda s, a=a: MultinomialNB(alpha=a), vec
        for a in (0.3, 1.0):
            yield f"{vname}-cnb-a{a}", lambda s, a=a: ComplementNB(alpha=a), vec
        for a in (1e-5, 1e-4):
            yield f"{vname}-sgd-log-a{a}", lambda s, a=a: SGDClassifier(loss="log_loss", alpha=a,
                                                                         random_state=s), vec
            yield f"{vname}-sgd-huber-a{a}", lambda s, a=a: SGDClassifier(loss="modified_huber", alpha=a,
                                                                           random_state=s), vec


def _time_features(frame, column: str):
    """Replace a date/time column by numeric features: elapsed days, year, month, day of year (+ sine/cosine)."""
    import numpy as np
    import pandas as pd

    when = pd.to_datetime(frame[column])
    out = frame.drop(columns=[column]).copy()
    out["t_days"] = (when - pd.Timestamp("1900-01-01")).dt.days.astype(float)
    out["t_year"] = when.dt.year.astype(float)
    out["t_month"] = when.dt.month.astype(float)
    doy = when.dt.day_of_year.astype(float)
    out["t_doy_sin"] = np.sin(2 * np.pi * doy / 365.25)
    out["t_doy_cos"] = np.cos(2 * np.pi * doy / 365.25)
    return out


def _image_pixels(folder: Path, names):
    """Grey-level pixel vectors (0..1) of the image files ``names`` under ``folder``, one row each."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    rows = [np.asarray(Image.open(folder / str(n)).convert("L"), dtype=np.float32).ravel() / 255.0 for n in names]
    matrix = np.vstack(rows)
    return pd.DataFrame(matrix, columns=[f"px{i}" for i in range(matrix.shape[1])])


def task_features(spec: TaskSpec, public: Path, frame):
    """The model inputs of ``frame`` (a train or test table) for the spec's input kind and split method."""
    targets = list(spec.submission.target_columns)
    features = frame.drop(columns=[c for c in (spec.submission.id_column, *targets) if c in frame.columns])
    if spec.inputs.kind == "images":
        return _image_pixels(public / (spec.inputs.dir or ""), features[spec.inputs.column])
    if spec.inputs.kind == "text":
        return features[spec.inputs.column].fillna("").astype(str)
    if spec.split.method == "time":
        features = _time_features(features, spec.split.time_column or "")
    return features


def _population(spec: TaskSpec, features, n_train: int, regression: bool):
    """(name, model builder) pairs; a builder takes the seed and returns an unfitted estimator."""
    from sklearn.pipeline import make_pipeline

    if spec.inputs.kind == "text":
        for name, factory, vec in _text_population():
            yield name, lambda s, f=factory, v=vec: make_pipeline(v(), f(s))
        return
    large = n_train > LARGE_TRAIN_ROWS
    population = _regressors(large) if regression else _classifiers(large)
    if features.shape[1] > MAX_RAW_FEATURES:  # e.g. 32x32 images: project first (PCA), as is common
        from sklearn.decomposition import PCA

        for name, factory in population:
            yield f"pca{PCA_COMPONENTS}-{name}", lambda s, f=factory: make_pipeline(
                _preprocessor(features), PCA(PCA_COMPONENTS, random_state=s), f(s))
        return
    for name, factory in population:
        yield name, lambda s, f=factory: make_pipeline(_preprocessor(features), f(s))


def population_predictions(spec: TaskSpec, prepared: PreparedData, seed: int = 0,
                           progress: Callable[[int, str], None] | None = None,
                           keep: Callable[[str], bool] | None = None,
                           regression: bool | None = None) -> Iterator[tuple[str, Any]]:
    """``(team name, predictions)`` of each setting of the population (an Arrow table with the id and target
    columns), trained on the public data. ``keep(name)`` selects settings (all by default); ``regression``
    overrides the choice of regressors vs classifiers (tasks with their own grader do not say).

    With several target columns each setting fits one model per column. ``progress(i, name)`` is called
    before each setting.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    sub = spec.submission
    targets = list(sub.target_columns)
    train = pd.read_csv(prepared.public / "train.csv")
    test = pd.read_csv(prepared.public / "test.csv")
    x_train = task_features(spec, prepared.public, train)
    x_test = task_features(spec, prepared.public, test)
    value = spec.metric.prediction == "value" if regression is None else regression
    for i, (name, build) in enumerate(_population(spec, x_train, len(train), value)):
        if keep is not None and not keep(name):
            continue
        if progress:
            progress(i, name)
        columns = {sub.id_column: test[sub.id_column].astype(str).to_numpy()}
        for target in targets:
            model = build(seed)
            with warnings.catch_warnings():  # convergence warnings of weak settings are part of the population
                warnings.simplefilter("ignore")
                model.fit(x_train, train[target])
                if spec.metric.prediction == "probability":
                    values = model.predict_proba(x_test)[:, 1]
                else:
                    values = model.predict(x_test)
            values = np.asarray(values)
            if spec.metric_name.startswith("rmsle"):  # any sensible solution clips negative predictions
                values = np.clip(values, 0.0, None)
            columns[target] = values.astype(str) if spec.metric.text_predictions else values
        yield f"ref-{name}", pa.table(columns)


def build_reference_leaderboard(spec: TaskSpec, prepared: PreparedData, seed: int = 0,
                                progress: Callable[[int, str], None] | None = None,
                                keep: Callable[[str], bool] | None = None) -> list[dict]:
    """Train the population on the public data and return entries sorted best first (private score).

    ``keep(name)`` selects settings of the population (all by default); see :func:`population_predictions`.
    """
    private_answers = answer_table(spec, prepared, "private")
    public_answers = answer_table(spec, prepared, "public")
    entries: list[dict[str, Any]] = []
    for team, predictions in population_predictions(spec, prepared, seed, progress, keep):
        entries.append({
            "team": team,
            "score": score_predictions(spec, private_answers, predictions),
            "public_score": score_predictions(spec, public_answers, predictions),
        })
    entries.sort(key=lambda e: float(e["score"]), reverse=spec.higher_is_better)
    return entries


def leaderboard_csv(spec: TaskSpec, entries: list[dict]) -> str:
    """CSV text with a provenance header, one row per entry, best first."""
    import sklearn

    out = io.StringIO()
    out.write(f"# provenance: reference (not human). {len(entries)} honest scikit-learn {sklearn.__version__} "
              f"solutions on task '{spec.id}', scored on the private (score) and public (public_score) parts.\n")
    out.write("# built by: dojoflow tasks build-leaderboard " + spec.id + "\n")
    writer = csv.DictWriter(out, fieldnames=["rank", "team", "score", "public_score"], lineterminator="\n")
    writer.writeheader()
    for rank, entry in enumerate(entries, start=1):
        writer.writerow({"rank": rank, "team": entry["team"], "score": f"{entry['score']:.10g}",
                         "public_score": f"{entry['public_score']:.10g}"})
    return out.getvalue()


def write_reference_leaderboard(spec: TaskSpec, prepared: PreparedData, path: Path | None = None,
                                progress: Callable[[int, str], None] | None = None) -> Path:
    """Build and write the task's reference leaderboard (to the spec's leaderboard file by default)."""
    path = path or spec.leaderboard_path
    path.write_text(leaderboard_csv(spec, build_reference_leaderboard(spec, prepared, progress=progress)))
    return path
