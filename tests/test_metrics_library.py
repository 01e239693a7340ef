"""The extended metric library: each added metric against scikit-learn/scipy or a hand-worked example."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from dojoflow.tasks_catalog.metrics import BUILTIN_METRICS, METRICS, get_metric, rle_decode, rle_encode

ADDED = {
    # name: (higher_is_better, prediction kind)
    "balanced_accuracy": (True, "label"),
    "f1": (True, "label"),
    "f1_micro": (True, "label"),
    "f1_weighted": (True, "label"),
    "quadratic_weighted_kappa": (True, "label"),
    "roc_auc_ovr": (True, "probability"),
    "roc_auc_mean_columnwise": (True, "probability"),
    "log_loss_multiclass": (False, "probability"),
    "map@3": (True, "ranking"),
    "map@5": (True, "ranking"),
    "mse": (False, "value"),
    "rmsle": (False, "value"),
    "r2": (True, "value"),
    "mape": (False, "value"),
    "smape": (False, "value"),
    "pearson": (True, "value"),
    "spearman": (True, "value"),
    "rmse_mean_columnwise": (False, "value"),
    "rmsle_mean_columnwise": (False, "value"),
    "dice": (True, "rle"),
    "iou": (True, "rle"),
}
ORIGINAL = {"accuracy", "f1_macro", "roc_auc", "log_loss", "rmse", "mae"}
KINDS = {"label", "probability", "value", "ranking", "rle"}


def test_registry_holds_the_original_and_added_metrics():
    assert set(BUILTIN_METRICS) == ORIGINAL | set(ADDED) and BUILTIN_METRICS <= set(METRICS)
    for name, metric in METRICS.items():
        assert metric.name == name
        assert metric.prediction in KINDS
        assert metric.definition.strip()


@pytest.mark.parametrize("name", sorted(ADDED))
def test_direction_and_prediction_kind(name):
    metric = get_metric(name)
    higher, kind = ADDED[name]
    assert metric.higher_is_better is higher
    assert metric.prediction == kind
    good, bad = (2.0, 1.0) if higher else (1.0, 2.0)
    assert metric.is_better(good, bad) and not metric.is_better(bad, good)


def test_new_kinds_are_documented_in_the_module_docstring():
    import dojoflow.tasks_catalog.metrics as module

    for kind in KINDS:
        assert f"``{kind}``" in module.__doc__
    assert "HxW:" in module.__doc__


def test_importing_the_library_does_not_import_sklearn_or_scipy():
    code = ("import sys, dojoflow.tasks_catalog.metrics; "
            "assert 'sklearn' not in sys.modules and 'scipy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_get_metric_unknown_lists_added_names():
    with pytest.raises(KeyError) as info:
        get_metric("no_such_metric")
    for name in ("map@3", "dice", "r2", "accuracy"):
        assert name in str(info.value)


# --- classification -----------------------------------------------------------------------------------------


def test_balanced_accuracy_by_hand_and_sklearn():
    y_true = np.array(["a", "a", "a", "a", "b", "b"])
    y_pred = np.array(["a", "a", "a", "b", "b", "a"])
    # recall a = 3/4, recall b = 1/2
    value = get_metric("balanced_accuracy")(y_true, y_pred)
    assert value == pytest.approx((0.75 + 0.5) / 2)
    assert value == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))


def test_f1_binary_by_hand_and_sklearn_with_text_labels():
    y_true = np.array(["1", "1", "1", "0", "0"])
    y_pred = np.array(["1", "0", "1", "1", "0"])
    # tp 2, fp 1, fn 1 -> precision 2/3, recall 2/3 -> F1 2/3
    value = get_metric("f1")(y_true, y_pred)
    assert value == pytest.approx(2 / 3)
    assert value == pytest.approx(skm.f1_score(y_true.astype(int), y_pred.astype(int)))
    # constant negative predictions: no true positive -> 0
    assert get_metric("f1")(y_true, np.array(["0"] * 5)) == 0.0


def test_f1_binary_rejects_non_binary_labels():
    with pytest.raises(ValueError, match="labels 0 and 1"):
        get_metric("f1")(np.array(["a", "b"]), np.array(["a", "a"]))
    with pytest.raises(ValueError, match="labels 0 and 1"):
        get_metric("f1")(np.array([0, 2]), np.array([0, 1]))


@pytest.mark.parametrize("average", ["micro", "weighted"])
def test_f1_micro_and_weighted_match_sklearn(average):
    rng = np.random.default_rng(1)
    y_true = rng.choice(["x", "y", "z"], 60)
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.choice(["x", "y", "z"], 60))
    value = get_metric(f"f1_{average}")(y_true, y_pred)
    assert value == pytest.approx(skm.f1_score(y_true, y_pred, average=average))


def test_f1_micro_equals_accuracy_and_weighted_by_hand():
    y_true = np.array(["0", "0", "1", "1", "2", "2"])
    y_pred = np.array(["0", "1", "1", "1", "2", "0"])
    assert get_metric("f1_micro")(y_true, y_pred) == pytest.approx(4 / 6)
    # per-class F1 0.5, 0.8, 2/3 with support 2 each -> same as macro here
    assert get_metric("f1_weighted")(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_quadratic_weighted_kappa_matches_sklearn_and_orders_text_numerically():
    y_true = np.array([1, 2, 3, 10, 2, 3, 1, 10])
    y_pred = np.array([1, 3, 3, 3, 2, 10, 1, 10])
    expected = skm.cohen_kappa_score(y_true, y_pred, weights="quadratic")
    metric = get_metric("quadratic_weighted_kappa")
    assert metric(y_true, y_pred) == pytest.approx(expected)
    # grading passes labels as text; "10" must still sort after "3"
    assert metric(y_true.astype(str), y_pred.astype(str)) == pytest.approx(expected)
    assert metric(y_true, y_true) == pytest.approx(1.0)


def test_quadratic_weighted_kappa_by_hand():
    # labels 0/1: weights are (i - j)^2 / 1; O = [[1, 1], [0, 2]], E = row x col totals / n = [[0.5, 1.5], [0.5, 1.5]]
    # kappa = 1 - (1 * 1 + 1 * 0) / (1 * 1.5 + 1 * 0.5) = 1 - 1 / 2 = 0.5
    value = get_metric("quadratic_weighted_kappa")(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    assert value == pytest.approx(0.5)


def test_quadratic_weighted_kappa_one_same_label_raises():
    with pytest.raises(ValueError, match="undefined"):
        get_metric("quadratic_weighted_kappa")(np.array(["2", "2"]), np.array(["2", "2"]))


def _probabilities(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    raw = rng.random((n, k)) + 1.5 * np.eye(k)[y] * rng.random((n, 1))
    return y, raw / raw.sum(axis=1, keepdims=True)


def test_roc_auc_ovr_matches_sklearn():
    y, p = _probabilities(90, 3, 2)
    expected = skm.roc_auc_score(y, p, multi_class="ovr", average="macro")
    metric = get_metric("roc_auc_ovr")
    assert metric(y, p) == pytest.approx(expected)
    # text labels map to columns in sorted order; one-hot answers work as well
    names = np.array(["ant", "bee", "cat"])
    assert metric(names[y], p) == pytest.approx(expected)
    assert metric(np.eye(3)[y], p) == pytest.approx(expected)


def test_roc_auc_ovr_by_hand():
    y_true = np.array([0, 1, 2, 0])
    y_pred = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.4, 0.4, 0.2]])
    # class 0: positives 0.6, 0.4 vs negatives 0.2, 0.3 -> 4/4; class 1: positive 0.5 vs 0.3, 0.3, 0.4 -> 1
    # class 2: positive 0.4 vs 0.1, 0.3, 0.2 -> 1
    assert get_metric("roc_auc_ovr")(y_true, y_pred) == pytest.approx(1.0)
    # swapping columns 1 and 2 ruins classes 1 and 2: class 1 col = [0.1, 0.3, 0.4, 0.2], positive 0.3 beats 0.1, 0.2
    # -> 2/3; class 2 col = [0.3, 0.5, 0.3, 0.4], positive 0.3 beats none, ties 0.3 once -> 0.5/3
    swapped = y_pred[:, [0, 2, 1]]
    assert get_metric("roc_auc_ovr")(y_true, swapped) == pytest.approx((1 + 2 / 3 + 0.5 / 3) / 3)


def test_roc_auc_ovr_single_class_raises():
    p = np.array([[0.7, 0.3], [0.6, 0.4], [0.9, 0.1]])
    with pytest.raises(ValueError, match="only one class"):
        get_metric("roc_auc_ovr")(np.array([0, 0, 0]), p)


def test_roc_auc_ovr_unmappable_labels_raise():
    p = np.full((3, 3), 1 / 3)
    with pytest.raises(ValueError, match="cannot map"):
        get_metric("roc_auc_ovr")(np.array(["a", "b", "a"]), p)
    with pytest.raises(ValueError, match=r"\(n, k\) matrix"):
        get_metric("roc_auc_ovr")(np.array([0, 1]), np.array([0.2, 0.8]))


def test_roc_auc_mean_columnwise_matches_sklearn_per_column():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (100, 4))
    p = np.clip(0.4 * y + 0.6 * rng.random((100, 4)), 0, 1)
    expected = np.mean([skm.roc_auc_score(y[:, j], p[:, j]) for j in range(4)])
    assert get_metric("roc_auc_mean_columnwise")(y, p) == pytest.approx(expected)
    assert get_metric("roc_auc_mean_columnwise")(y, p) == pytest.approx(skm.roc_auc_score(y, p, average="macro"))


def test_roc_auc_mean_columnwise_single_class_column_raises():
    y = np.array([[0, 1], [1, 1], [0, 1]])
    p = np.array([[0.1, 0.5], [0.9, 0.5], [0.2, 0.5]])
    with pytest.raises(ValueError, match="only one class.*column 1"):
        get_metric("roc_auc_mean_columnwise")(y, p)


def test_log_loss_multiclass_matches_sklearn_and_hand():
    y, p = _probabilities(30, 4, 4)
    assert get_metric("log_loss_multiclass")(y, p) == pytest.approx(skm.log_loss(y, p, labels=[0, 1, 2, 3]))
    y_true = np.array([0, 2])
    y_pred = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    assert get_metric("log_loss_multiclass")(y_true, y_pred) == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)


def test_log_loss_multiclass_renormalises_rows_and_clips():
    # rows not summing to 1 are renormalised before scoring: 0.4 / 0.8 = 0.5 and 0.4 / 0.5 = 0.8
    y_pred = np.array([[0.4, 0.2, 0.2], [0.05, 0.05, 0.4]])
    assert get_metric("log_loss_multiclass")(np.array([0, 2]), y_pred) == pytest.approx(
        -(math.log(0.5) + math.log(0.8)) / 2)
    # clipping comes first: 1.6 becomes 1 - 1e-15, so the row is [0.2, 0.2, 1] / 1.4
    value = get_metric("log_loss_multiclass")(np.array([2]), np.array([[0.2, 0.2, 1.6]]))
    assert value == pytest.approx(-math.log(1 / 1.4))
    # a certain wrong prediction is finite: p(true) = 1e-15 / (1e-15 + (1 - 1e-15) + 1e-15)
    value = get_metric("log_loss_multiclass")(np.array([0]), np.array([[0.0, 1.0, 0.0]]))
    assert value == pytest.approx(-math.log(1e-15 / (1 + 1e-15)), rel=1e-9)
    # a class absent from the answers is fine when labels are column indices
    assert math.isfinite(get_metric("log_loss_multiclass")(np.array([0, 0]), np.full((2, 3), 1 / 3)))
    assert get_metric("log_loss_multiclass")(np.array([0, 0]), np.full((2, 3), 1 / 3)) == pytest.approx(math.log(3))


# --- ranking ------------------------------------------------------------------------------------------------


def test_map_at_k_by_hand():
    y_true = np.array(["a", "b", "c", "d"])
    y_pred = np.array(["a b c", "c b a", "x y z c", "d"])
    # row 1: rank 1 -> 1; row 2: rank 2 -> 1/2; row 3: rank 4 -> 0 at K=3, 1/4 at K=5; row 4: rank 1 -> 1
    assert get_metric("map@3")(y_true, y_pred) == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert get_metric("map@5")(y_true, y_pred) == pytest.approx((1 + 0.5 + 0.25 + 1) / 4)


def test_map_at_k_duplicates_counted_once():
    # the true label repeated gets credit once (score 1, not more)
    assert get_metric("map@3")(np.array(["a"]), np.array(["a a a"])) == pytest.approx(1.0)
    # repeated wrong labels keep their slots, as in Kaggle's apk: "b" is third
    assert get_metric("map@3")(np.array(["b"]), np.array(["a a b"])) == pytest.approx(1 / 3)
    assert get_metric("map@3")(np.array(["b"]), np.array(["a a a b"])) == 0.0
    # second occurrence of the true label never beats its first
    assert get_metric("map@5")(np.array(["b"]), np.array(["a b c b b"])) == pytest.approx(0.5)


def test_map_at_k_empty_and_numeric_labels():
    # a missing ranking scores 0; numeric answers compare with their text form
    assert get_metric("map@3")(np.array([7.0, 3.0]), np.array([np.nan, "1 3"], dtype=object)) == pytest.approx(0.25)


# --- regression ---------------------------------------------------------------------------------------------


def test_mse_by_hand_and_sklearn():
    y_true, y_pred = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 1.0, 4.0])
    assert get_metric("mse")(y_true, y_pred) == pytest.approx(1.25)
    assert get_metric("mse")(y_true, y_pred) == pytest.approx(skm.mean_squared_error(y_true, y_pred))


def test_rmsle_by_hand_and_sklearn():
    y_true, y_pred = np.array([0.0, math.e - 1, 3.0]), np.array([0.0, 0.0, 3.0])
    # log1p errors 0, 1, 0 -> sqrt(1/3)
    assert get_metric("rmsle")(y_true, y_pred) == pytest.approx(math.sqrt(1 / 3))
    rng = np.random.default_rng(5)
    a, b = rng.random(50) * 10, rng.random(50) * 10
    assert get_metric("rmsle")(a, b) == pytest.approx(skm.root_mean_squared_log_error(a, b))


def test_rmsle_negative_inputs_raise():
    with pytest.raises(ValueError, match="negative"):
        get_metric("rmsle")(np.array([1.0, 2.0]), np.array([1.0, -0.5]))
    with pytest.raises(ValueError, match="negative"):
        get_metric("rmsle")(np.array([-1.0, 2.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="negative"):
        get_metric("rmsle_mean_columnwise")(np.array([[1.0, 2.0]]), np.array([[1.0, -2.0]]))


def test_r2_by_hand_and_sklearn():
    y_true, y_pred = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 1.0, 4.0])
    # SS_res = 5, SS_tot = 5 -> 0
    assert get_metric("r2")(y_true, y_pred) == pytest.approx(0.0)
    assert get_metric("r2")(y_true, y_true) == 1.0
    assert get_metric("r2")(y_true, np.full(4, 2.5)) == pytest.approx(skm.r2_score(y_true, np.full(4, 2.5)))


def test_mape_by_hand_and_sklearn():
    y_true, y_pred = np.array([100.0, 200.0, -50.0]), np.array([110.0, 150.0, -50.0])
    # 10%, 25%, 0% -> 35/3 percent
    assert get_metric("mape")(y_true, y_pred) == pytest.approx(35 / 3)
    assert get_metric("mape")(y_true, y_pred) == pytest.approx(100 * skm.mean_absolute_percentage_error(y_true, y_pred))
    with pytest.raises(ValueError, match="answer is 0"):
        get_metric("mape")(np.array([0.0, 1.0]), np.array([1.0, 1.0]))


def test_smape_by_hand():
    y_true, y_pred = np.array([100.0, 0.0, 0.0, -10.0]), np.array([50.0, 0.0, 5.0, 10.0])
    # rows: 2*50/150 = 2/3; 0/0 -> 0; 2*5/5 = 2; 2*20/20 = 2 -> mean 14/12, in percent
    assert get_metric("smape")(y_true, y_pred) == pytest.approx(100 * (2 / 3 + 0 + 2 + 2) / 4)
    assert get_metric("smape")(np.zeros(3), np.zeros(3)) == 0.0
    assert get_metric("smape")(y_true, y_true) == 0.0


def test_pearson_and_spearman_match_scipy():
    rng = np.random.default_rng(6)
    a = rng.normal(size=40)
    b = a ** 3 + rng.normal(size=40) * 0.5
    assert get_metric("pearson")(a, b) == pytest.approx(stats.pearsonr(a, b)[0])
    assert get_metric("spearman")(a, b) == pytest.approx(stats.spearmanr(a, b)[0])


def test_correlations_by_hand():
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    assert get_metric("pearson")(y_true, 2 * y_true + 1) == pytest.approx(1.0)
    assert get_metric("pearson")(y_true, -y_true) == pytest.approx(-1.0)
    # monotone but not linear: spearman 1, pearson below 1
    assert get_metric("spearman")(y_true, np.exp(y_true)) == pytest.approx(1.0)
    assert get_metric("pearson")(y_true, np.exp(y_true)) < 1.0


def test_correlations_constant_predictions_score_zero_constant_answers_raise():
    for name in ("pearson", "spearman"):
        assert get_metric(name)(np.array([1.0, 2.0, 3.0]), np.full(3, 7.0)) == 0.0
        with pytest.raises(ValueError, match="answers are constant"):
            get_metric(name)(np.full(3, 2.0), np.array([1.0, 2.0, 3.0]))


def test_columnwise_rmse_and_rmsle():
    y_true = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
    y_pred = np.array([[1.0, math.e - 1], [3.0, 0.0], [1.0, 0.0], [4.0, 0.0]])
    # column 1: RMSE sqrt(1.25); column 2: RMSE sqrt((e-1)^2 / 4) = (e-1)/2
    assert get_metric("rmse_mean_columnwise")(y_true, y_pred) == pytest.approx((math.sqrt(1.25) + (math.e - 1) / 2) / 2)
    expected = np.mean([skm.root_mean_squared_log_error(y_true[:, j], y_pred[:, j]) for j in range(2)])
    assert get_metric("rmsle_mean_columnwise")(y_true, y_pred) == pytest.approx(expected)
    # one column: the same as the plain metric
    assert get_metric("rmse_mean_columnwise")(y_true[:, 0], y_pred[:, 0]) == pytest.approx(math.sqrt(1.25))
    with pytest.raises(ValueError, match="differ"):
        get_metric("rmse_mean_columnwise")(y_true, y_pred[:, :1])


# --- masks --------------------------------------------------------------------------------------------------


def test_rle_decode_hand_example_column_major():
    # 3x3, pixels numbered down each column: 1 4 7 / 2 5 8 / 3 6 9
    mask = rle_decode("1 2 8 2", (3, 3))
    expected = np.array([[1, 0, 0],
                         [1, 0, 1],
                         [0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(mask, expected)
    assert rle_encode(expected) == "1 2 8 2"


@pytest.mark.parametrize("rle, shape", [("", (2, 3)), ("1 6", (2, 3)), ("2 1 4 2", (2, 3)), ("1 1 3 1 5 1", (2, 3)),
                                        ("3 9", (4, 4))])
def test_rle_round_trips(rle, shape):
    mask = rle_decode(rle, shape)
    assert mask.shape == shape
    assert rle_encode(mask) == rle
    np.testing.assert_array_equal(rle_decode(rle_encode(mask), shape), mask)


def test_rle_round_trip_random_masks():
    rng = np.random.default_rng(7)
    for _ in range(20):
        mask = rng.random((5, 7)) < 0.4
        np.testing.assert_array_equal(rle_decode(rle_encode(mask), (5, 7)), mask)


def test_rle_decode_rejects_bad_input():
    with pytest.raises(ValueError, match="outside"):
        rle_decode("8 3", (3, 3))
    with pytest.raises(ValueError, match="outside"):
        rle_decode("0 2", (3, 3))
    with pytest.raises(ValueError, match="pairs"):
        rle_decode("1 2 3", (3, 3))
    with pytest.raises(ValueError, match="integers"):
        rle_decode("1 a", (3, 3))
    assert not rle_decode(np.nan, (2, 2)).any()


def test_dice_and_iou_by_hand():
    # 4x4 masks; answer pixels 1-3 and 9-10 (5 pixels); prediction pixels 2-5 (4 pixels): overlap 2-3 (2 pixels)
    y_true = np.array(["4x4:1 3 9 2", "2x2:", "2x2:1 4"], dtype=object)
    y_pred = np.array(["2 4", "", "1 4"], dtype=object)
    # row 1: dice 2*2/(5+4) = 4/9, iou 2/7; row 2: both empty -> 1; row 3: identical -> 1
    assert get_metric("dice")(y_true, y_pred) == pytest.approx((4 / 9 + 1 + 1) / 3)
    assert get_metric("iou")(y_true, y_pred) == pytest.approx((2 / 7 + 1 + 1) / 3)


def test_dice_and_iou_match_sklearn_on_flattened_masks():
    rng = np.random.default_rng(8)
    truth, pred = rng.random((6, 5)) < 0.5, rng.random((6, 5)) < 0.5
    y_true, y_pred = np.array([f"6x5:{rle_encode(truth)}"]), np.array([rle_encode(pred)])
    assert get_metric("dice")(y_true, y_pred) == pytest.approx(skm.f1_score(truth.ravel(), pred.ravel()))
    assert get_metric("iou")(y_true, y_pred) == pytest.approx(skm.jaccard_score(truth.ravel(), pred.ravel()))


def test_mask_metrics_edge_cases():
    # one mask empty and the other not -> 0; missing prediction is the empty mask
    assert get_metric("dice")(np.array(["2x2:1 1"]), np.array([""])) == 0.0
    assert get_metric("iou")(np.array(["2x2:"]), np.array([np.nan], dtype=object)) == 1.0
    # a prediction may carry the answer's prefix, but not a different one
    assert get_metric("iou")(np.array(["2x2:1 2"]), np.array(["2x2:1 2"])) == 1.0
    with pytest.raises(ValueError, match="3x3"):
        get_metric("dice")(np.array(["2x2:1 2"]), np.array(["3x3:1 2"]))
    with pytest.raises(ValueError, match="HxW"):
        get_metric("dice")(np.array(["1 2"]), np.array(["1 2"]))
    with pytest.raises(ValueError, match="outside"):
        get_metric("iou")(np.array(["2x2:1 2"]), np.array(["3 5"]))


def test_new_metrics_return_python_float():
    cases = {
        "f1": (np.array([0, 1]), np.array([1, 1])),
        "roc_auc_ovr": (np.array([0, 1]), np.array([[0.8, 0.2], [0.3, 0.7]])),
        "map@3": (np.array(["a"]), np.array(["b a"])),
        "pearson": (np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])),
        "dice": (np.array(["2x2:1 1"]), np.array(["1 2"])),
        "smape": (np.array([1.0]), np.array([2.0])),
    }
    for name, (y_true, y_pred) in cases.items():
        assert type(get_metric(name)(y_true, y_pred)) is float
