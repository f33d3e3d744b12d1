"""The named edge catalog: inputs at the limits of every loss (gaps, non-finite values, empty and
degenerate shapes, exact probabilities 0 and 1), each with a note on what it probes."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cache

import numpy as np

from lossconf.case import Case, make_case

_F16 = ("float16",)
_F32 = ("float32",)
_WIDE = ("float32", "float64", "bfloat16")  # exponent range of float32 or wider
_INF, _NAN = math.inf, math.nan


def _onehot(labels: list[int], c: int) -> list[list[float]]:
    return [[1.0 if j == k else 0.0 for j in range(c)] for k in labels]


def _edge(case_id: str, loss: str, first, second=None, note: str = "", **fields) -> Case:
    return make_case(case_id, loss, first, second, kind="edge", note=note, **fields)


def _softmax_family_edges() -> list[Case]:
    """Logit gaps, non-finite logits and class counts, for every loss with a softmax inside."""
    gaps = [  # (suffix, row, dtypes, nonfinite, note)
        ("gap_1e4", [0.0, 1e4, -1e4], None, False, "logit gap of 1e4: exp overflows in every dtype unless shifted"),
        ("gap_88_7", [88.7, 0.0, -1.0], _WIDE, False, "max logit 88.7: exp(88.7) is near the float32 maximum"),
        ("gap_89", [89.0, 0.0, 1.0], _WIDE, False, "max logit 89: exp(89) overflows float32 (> 3.4e38)"),
        ("gap_104", [0.0, -104.0, 1.0], _WIDE, False, "a logit 104 below the max: exp(-104) underflows float32"),
        ("gap_m88_7_all", [-88.7, -88.7, -90.0], _WIDE, False,
         "all logits near -88.7: unshifted exp is subnormal in float32, the sum loses digits"),
        ("gap_11_f16", [11.0, 0.0, -11.0], _F16, False, "gap of 11: exp(11) = 59874 is just below the float16 max"),
        ("gap_12_f16", [12.0, 0.0, 1.0], _F16, False, "max logit 12: exp(12) overflows float16 (> 65504)"),
        ("gap_20_f16", [0.0, -20.0, 20.0], _F16, False, "gap of 20: exp(-20) underflows float16, exp(20) overflows"),
        ("neg_inf", [-_INF, 0.0, 1.0], None, False, "a -inf logit (masked class) with zero target weight"),
        ("pos_inf", [_INF, 0.0, 1.0], None, True, "a +inf logit: the softmax limit puts all mass on it"),
        ("nan", [_NAN, 0.0, 1.0], None, True, "a NaN logit makes its sample NaN"),
    ]
    out: list[Case] = []
    for suffix, row, dtypes, nonfinite, note in gaps:
        first = [row, [0.5, -0.25, 2.0]]  # a well-behaved second row: the problem must stay in its row
        target_class = [2, 0]
        out += [
            _edge(f"edge_sce_{suffix}", "softmax_cross_entropy", first, _onehot(target_class, 3), note,
                  dtypes=dtypes, nonfinite=nonfinite),
            _edge(f"edge_sparse_{suffix}", "sparse_softmax_cross_entropy", first, target_class, note,
                  dtypes=dtypes, nonfinite=nonfinite),
            _edge(f"edge_softmax_{suffix}", "softmax", first, note=note, dtypes=dtypes, nonfinite=nonfinite),
            _edge(f"edge_log_softmax_{suffix}", "log_softmax", first, note=note, dtypes=dtypes,
                  nonfinite=nonfinite or suffix == "neg_inf"),  # log softmax of a -inf logit is -inf
        ]
    out += [
        _edge("edge_sce_pos_inf_target", "softmax_cross_entropy", [[_INF, 0.0, 1.0]], [[1.0, 0.0, 0.0]],
              "+inf logit on the target class: the limit is loss 0 (naive inf - inf gives NaN)"),
        _edge("edge_sce_neg_inf_target", "softmax_cross_entropy", [[-_INF, 0.0, 1.0]], [[1.0, 0.0, 0.0]],
              "-inf logit on the target class: loss +inf", nonfinite=True),
        _edge("edge_softmax_all_neg_inf", "softmax", [[-_INF, -_INF, -_INF]],
              note="every logit -inf: softmax is 0/0 = NaN", nonfinite=True),
    ]
    c1000 = [[0.0] * 1000, [1e4] * 1000]
    for loss in ("softmax_cross_entropy", "sparse_softmax_cross_entropy", "softmax", "log_softmax"):
        short = {"softmax_cross_entropy": "sce", "sparse_softmax_cross_entropy": "sparse"}.get(loss, loss)
        labels = {"softmax_cross_entropy": _onehot([0, 999], 1000), "sparse_softmax_cross_entropy": [0, 999]}
        out.append(_edge(f"edge_{short}_equal_c1000", loss, c1000, labels.get(loss),
                         "all-equal logits (0 and 1e4) over C = 1000: uniform softmax, loss log 1000"))
        labels1 = {"softmax_cross_entropy": [[1.0], [1.0]], "sparse_softmax_cross_entropy": [0, 0]}
        out.append(_edge(f"edge_{short}_c1", loss, [[3.0], [-1e4]], labels1.get(loss),
                         "C = 1: softmax is 1, the loss and its gradient are 0"))
        labels2 = {"softmax_cross_entropy": _onehot([1, 0], 2), "sparse_softmax_cross_entropy": [1, 0]}
        out.append(_edge(f"edge_{short}_c2", loss, [[1.5, -0.5], [30.0, -30.0]], labels2.get(loss),
                         "C = 2: equals the sigmoid of the logit difference"))
        labels0 = {"softmax_cross_entropy": np.zeros((0, 4)), "sparse_softmax_cross_entropy": np.zeros(0, int)}
        for reduction in ("none", "sum") if loss.endswith("entropy") else ("none",):
            out.append(_edge(f"edge_{short}_n0_{reduction}", loss, np.zeros((0, 4)), labels0.get(loss),
                             "N = 0: an empty batch", params={"reduction": reduction}))
        x3 = np.arange(24.0).reshape(2, 3, 4) / 4 - 2
        labels3 = {"softmax_cross_entropy": np.moveaxis(np.eye(3)[[[0, 1, 2, 0], [2, 2, 1, 0]]], -1, 1),
                   "sparse_softmax_cross_entropy": [[0, 1, 2, 0], [2, 2, 1, 0]]}
        out.append(_edge(f"edge_{short}_axis1", loss, x3, labels3.get(loss),
                         "class axis 1 on [N, C, d] inputs (the PyTorch layout)", params={"axis": 1}))
    out += [
        _edge("edge_sce_n0_mean", "softmax_cross_entropy", np.zeros((0, 3)), np.zeros((0, 3)),
              "N = 0 with reduction mean: 0/0 = NaN", params={"reduction": "mean"}, nonfinite=True),
        _edge("edge_sce_gap_1e4_sum", "softmax_cross_entropy", [[0.0, 1e4, -1e4]], [[0.0, 0.0, 1.0]],
              "gap of 1e4 with reduction sum", params={"reduction": "sum"}),
    ]
    return out


def _softmax_cross_entropy_edges() -> list[Case]:
    x = [[2.0, 0.5, 6.0], [0.1, 0.0, 3.0]]
    out = [
        _edge("edge_sce_soft_sum_gt1", "softmax_cross_entropy", x, [[0.8, 0.5, 0.4], [0.0, 1.0, 1.0]],
              "soft labels summing to more than 1 (the gradient is sum(t) softmax - t)"),
        _edge("edge_sce_soft_sum_lt1", "softmax_cross_entropy", x, [[0.1, 0.1, 0.2], [0.0, 0.0, 0.0]],
              "soft labels summing to less than 1, and an all-zero target row (loss 0)"),
        _edge("edge_sce_negative_target", "softmax_cross_entropy", x, [[-0.5, 0.5, 1.0], [0.3, 0.6, 0.1]],
              "a negative soft label (any real weights are allowed)"),
    ]
    for eps in (0.0, 0.1, 1.0):
        name = str(eps).replace(".", "_")
        out.append(_edge(f"edge_sce_eps_{name}", "softmax_cross_entropy", x, _onehot([2, 1], 3),
                         f"label smoothing eps = {eps} (1 means uniform targets)",
                         params={"label_smoothing": eps, "reduction": "mean"}))
        out.append(_edge(f"edge_sparse_eps_{name}", "sparse_softmax_cross_entropy", x, [2, 1],
                         f"label smoothing eps = {eps} on sparse labels", params={"label_smoothing": eps}))
    out += [
        _edge("edge_sce_weight_eps", "softmax_cross_entropy", x, [[0.4, 0.1, 0.5], [0.0, 1.0, 0.0]],
              "class weights with soft labels and label smoothing, mean over N",
              params={"weight": [0.2, 1.0, 3.0], "label_smoothing": 0.1, "reduction": "mean"}),
        _edge("edge_sce_weight_sum", "softmax_cross_entropy", x, _onehot([2, 1], 3),
              "class weights with reduction sum", params={"weight": [0.2, 1.0, 3.0], "reduction": "sum"}),
    ]
    return out


def _sparse_edges() -> list[Case]:
    x = [[2.0, 0.5, 6.0], [0.1, 0.0, 3.0], [1.0, -1.0, 0.0], [-3.0, 4.0, 0.5]]
    w = [0.2, 1.0, 3.0]
    return [
        _edge("edge_sparse_all_ignored_mean", "sparse_softmax_cross_entropy", x[:2], [-100, -100],
              "every target ignored, reduction mean: 0/0 = NaN (0 in the all_ignored_zero variant)",
              params={"ignore_index": -100, "reduction": "mean"}, nonfinite=True),
        _edge("edge_sparse_all_ignored_sum", "sparse_softmax_cross_entropy", x[:2], [-100, -100],
              "every target ignored, reduction sum: 0", params={"ignore_index": -100, "reduction": "sum"}),
        _edge("edge_sparse_weight_ignore_mean", "sparse_softmax_cross_entropy", x, [2, -100, 0, 1],
              "class weights with ignore_index: mean divides by the weights of the kept targets",
              params={"weight": w, "ignore_index": -100, "reduction": "mean"}),
        _edge("edge_sparse_weight_ignore_eps_mean", "sparse_softmax_cross_entropy", x, [2, -100, 0, 1],
              "class weights, ignore_index and label smoothing together",
              params={"weight": w, "ignore_index": -100, "label_smoothing": 0.1, "reduction": "mean"}),
        _edge("edge_sparse_ignore_class0_none", "sparse_softmax_cross_entropy", x, [2, 0, 0, 1],
              "ignore_index equal to a real class (0): those samples give 0",
              params={"ignore_index": 0}),
        _edge("edge_sparse_ignored_nan_logit", "sparse_softmax_cross_entropy", [[_NAN, 0.0, 1.0], x[1]], [-100, 1],
              "an ignored sample with a NaN logit stays 0 (per sample)", params={"ignore_index": -100},
              nonfinite=True),
        _edge("edge_sparse_weight_zero_mean", "sparse_softmax_cross_entropy", x[:2], [0, 0],
              "every kept target has weight 0, reduction mean: 0/0 = NaN",
              params={"weight": [0.0, 1.0, 1.0], "reduction": "mean"}, nonfinite=True),
        _edge("edge_sparse_labels_above_256", "sparse_softmax_cross_entropy",
              np.linspace(-2.0, 2.0, 2 * 1000).reshape(2, 1000), [257, 999],
              "labels above 256 (not exactly representable in bfloat16 nor, above 2048, in float16): "
              "an API that casts labels to the logits' dtype picks the wrong class"),
    ]


def _sigmoid_family_edges() -> list[Case]:
    out: list[Case] = []
    rows = [  # (suffix, logits, dtypes, nonfinite, note)
        ("gap_1e4", [1e4, -1e4, 0.0], None, False, "logits of +-1e4: exp(|x|) overflows unless stable"),
        ("88_7", [88.7, -88.7, 89.0], _WIDE, False, "logits near +-88.7: exp overflows float32 at 88.73"),
        ("104", [104.0, -104.0, -103.0], _WIDE, False, "logits of +-104: exp(-104) underflows float32"),
        ("11_f16", [11.0, -11.0, 10.0], _F16, False, "logits of +-11: exp(11) = 59874 is just below the float16 max"),
        ("20_f16", [20.0, -20.0, 12.0], _F16, False, "logits of +-20: exp overflows/underflows float16"),
        ("inf", [_INF, -_INF, 0.0], None, True, "+-inf logits"),
        ("nan", [_NAN, 1.0, -1.0], None, True, "a NaN logit"),
    ]
    for suffix, x, dtypes, nonfinite, note in rows:
        z = [1.0, 0.0, 0.5]
        out += [
            _edge(f"edge_sigce_{suffix}", "sigmoid_cross_entropy", x, z, note, dtypes=dtypes,
                  nonfinite=nonfinite or suffix == "inf"),
            _edge(f"edge_sigmoid_{suffix}", "sigmoid", x, note=note, dtypes=dtypes, nonfinite=nonfinite),
        ]
    out += [
        _edge("edge_sigce_inf_limit", "sigmoid_cross_entropy", [_INF, -_INF], [1.0, 0.0],
              "+inf with target 1 and -inf with target 0: the limit is loss 0"),
        _edge("edge_sigce_subnormal_f32", "sigmoid_cross_entropy", [-100.0, 100.0], [0.0, 1.0],
              "loss softplus(-100) = 3.7e-44 is subnormal in float32", dtypes=_F32),
        _edge("edge_sigce_subnormal_f16", "sigmoid_cross_entropy", [-12.0, 12.0], [0.0, 1.0],
              "loss softplus(-12) = 6.1e-6 is subnormal in float16", dtypes=_F16),
        _edge("edge_sigmoid_subnormal_f32", "sigmoid", [-100.0, -95.0],
              note="sigmoid(-100) = 3.7e-44 is subnormal in float32", dtypes=_F32),
        _edge("edge_sigmoid_subnormal_f16", "sigmoid", [-12.0, -10.0],
              note="sigmoid(-12) = 6.1e-6 is subnormal in float16", dtypes=_F16),
        _edge("edge_sigce_pos_weight", "sigmoid_cross_entropy", [[0.7, 1.2, -0.3], [-2.0, 0.2, 0.9]],
              [[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]], "pos_weight per class (class axis last)",
              params={"pos_weight": [0.5, 2.0, 10.0], "reduction": "mean"}),
        _edge("edge_sigce_pos_weight_big_logit", "sigmoid_cross_entropy", [-1e4, 1e4], [1.0, 1.0],
              "pos_weight with logits of +-1e4", params={"pos_weight": [3.0], "reduction": "sum"}),
        _edge("edge_sigce_n0", "sigmoid_cross_entropy", np.zeros((0, 3)), np.zeros((0, 3)), "N = 0",
              params={"reduction": "sum"}),
        _edge("edge_sigce_n0_mean", "sigmoid_cross_entropy", np.zeros((0, 3)), np.zeros((0, 3)),
              "N = 0 with reduction mean: 0/0 = NaN", params={"reduction": "mean"}, nonfinite=True),
        _edge("edge_sigmoid_n0", "sigmoid", np.zeros((0, 3)), note="N = 0"),
    ]
    for eps in (0.0, 0.1, 1.0):
        out.append(_edge(f"edge_sigce_eps_{str(eps).replace('.', '_')}", "sigmoid_cross_entropy",
                         [0.7, -1.2, 30.0], [1.0, 0.0, 1.0], f"binary label smoothing eps = {eps}: z(1-eps) + eps/2",
                         params={"label_smoothing": eps, "reduction": "mean"}))
    return out


def _probability_edges() -> list[Case]:
    p = [[0.7, 0.1, 0.2], [0.1, 0.5, 0.4]]
    return [
        _edge("edge_bce_p0_z0", "binary_cross_entropy", [0.0, 1.0, 0.5], [0.0, 1.0, 0.5],
              "probabilities exactly 0 and 1 with matching targets: 0 log 0 = 0, loss 0 and log 2"),
        _edge("edge_bce_p0_z1", "binary_cross_entropy", [0.0, 1.0], [1.0, 0.0],
              "probability 0 under target 1 (and 1 under 0): loss +inf (100 with the log clamp)", nonfinite=True),
        _edge("edge_bce_tiny", "binary_cross_entropy", [1e-30, 1.0 - 2.0**-53, 1e-300], [1.0, 1.0, 0.0],
              "probabilities 1e-30, 1 - 2^-53 and 1e-300 (0 in float32, float16 and bfloat16)"),
        _edge("edge_bce_subnormal_f32", "binary_cross_entropy", [1e-44, 3e-45], [0.0, 0.0],
              "subnormal float32 probabilities: loss -log1p(-p) is subnormal too", dtypes=_F32),
        _edge("edge_bce_soft", "binary_cross_entropy", [[0.3, 0.9], [0.5, 0.01]], [[0.25, 0.5], [1.0, 0.75]],
              "soft targets in [0, 1], reduction mean", params={"reduction": "mean"}),
        _edge("edge_bce_sum", "binary_cross_entropy", [0.3, 0.9, 0.5], [0.0, 1.0, 1.0], "reduction sum",
              params={"reduction": "sum"}),
        _edge("edge_bce_n0", "binary_cross_entropy", np.zeros(0), np.zeros(0), "N = 0",
              params={"reduction": "sum"}),
        _edge("edge_cce_p0_t0", "categorical_cross_entropy", [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]],
              [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], "probabilities exactly 0 under target 0 (0 log 0 = 0) and 1"),
        _edge("edge_cce_p0_t1", "categorical_cross_entropy", [[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]],
              "probability 0 under target 1: loss +inf (16.1 with the 1e-7 clip)", nonfinite=True),
        _edge("edge_cce_unnormalized", "categorical_cross_entropy", [[0.2, 0.1, 0.1], [0.9, 0.9, 0.9]],
              _onehot([0, 2], 3), "probabilities not summing to 1 (Keras renormalises them first)"),
        _edge("edge_cce_soft_sum_gt1", "categorical_cross_entropy", p, [[0.8, 0.5, 0.4], [0.0, 1.0, 1.0]],
              "soft labels summing to more than 1, reduction mean", params={"reduction": "mean"}),
        _edge("edge_cce_soft_sum_lt1", "categorical_cross_entropy", p, [[0.1, 0.1, 0.2], [0.0, 0.0, 0.0]],
              "soft labels summing to less than 1, reduction sum", params={"reduction": "sum"}),
        _edge("edge_cce_tiny", "categorical_cross_entropy", [[1e-30, 1.0 - 1e-30, 0.0]], [[1.0, 0.0, 0.0]],
              "probability 1e-30 under the target: 0 after the cast to float16 (loss +inf there)"),
        _edge("edge_cce_c1", "categorical_cross_entropy", [[1.0], [0.25]], [[1.0], [1.0]], "C = 1"),
        _edge("edge_cce_n0", "categorical_cross_entropy", np.zeros((0, 3)), np.zeros((0, 3)), "N = 0",
              params={"reduction": "sum"}),
        _edge("edge_cce_axis1", "categorical_cross_entropy", np.full((2, 3, 2), 1 / 3),
              np.moveaxis(np.eye(3)[[[0, 2], [1, 1]]], -1, 1), "class axis 1 on [N, C, d]", params={"axis": 1}),
        _edge("edge_cce_nan", "categorical_cross_entropy", [[_NAN, 0.5, 0.5], [0.2, 0.3, 0.5]], _onehot([1, 2], 3),
              "a NaN probability makes its sample NaN", nonfinite=True),
    ]


def _kl_edges() -> list[Case]:
    logq = [[-1.0, -2.0, -0.6], [-0.1, -3.0, -5.0]]
    return [
        _edge("edge_kl_p0", "kl_divergence", logq, [[0.0, 0.3, 0.7], [1.0, 0.0, 0.0]],
              "target probabilities 0: 0 log 0 = 0"),
        _edge("edge_kl_logq_neg_inf", "kl_divergence", [[-_INF, -0.5, -1.0]], [[0.0, 0.6, 0.4]],
              "log q = -inf where p = 0: contributes 0 (naive 0 * inf = NaN)"),
        _edge("edge_kl_logq_neg_inf_p_pos", "kl_divergence", [[-_INF, -0.5, -1.0]], [[0.2, 0.4, 0.4]],
              "log q = -inf where p > 0: +inf", nonfinite=True),
        _edge("edge_kl_unnormalized", "kl_divergence", logq, [[0.5, 0.5, 0.5], [0.1, 0.1, 0.1]],
              "targets not summing to 1, reduction sum", params={"reduction": "sum"}),
        _edge("edge_kl_prob_input", "kl_divergence", [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]],
              [[0.1, 0.6, 0.3], [1.0, 0.0, 0.0]], "log_input=False: q given as probabilities, q = 0 where p = 0",
              params={"log_input": False, "reduction": "mean"}),
        _edge("edge_kl_prob_input_q0", "kl_divergence", [[0.0, 0.5, 0.5]], [[0.5, 0.25, 0.25]],
              "log_input=False with q = 0 under p > 0: +inf", params={"log_input": False}, nonfinite=True),
        _edge("edge_kl_axis1", "kl_divergence", np.log(np.full((2, 3, 2), 1 / 3)),
              np.moveaxis(np.eye(3)[[[0, 2], [1, 1]]], -1, 1), "class axis 1 on [N, C, d]", params={"axis": 1}),
        _edge("edge_kl_c1", "kl_divergence", [[0.0], [-2.0]], [[1.0], [1.0]], "C = 1"),
        _edge("edge_kl_n0", "kl_divergence", np.zeros((0, 3)), np.zeros((0, 3)), "N = 0", params={"reduction": "sum"}),
    ]


def _regression_edges() -> list[Case]:
    x = [[1.0, -2.0, 3.5], [0.0, 4.0, -1.0]]
    out: list[Case] = []
    for loss, short in (("mean_squared_error", "mse"), ("mean_absolute_error", "mae"),
                        ("root_mean_squared_error", "rmse")):
        mean_only = {"reduction": "mean"}
        red = mean_only if short == "rmse" else {}
        out += [
            _edge(f"edge_{short}_broadcast_row", loss, x, [0.5, -1.0, 3.5],
                  "targets [C] broadcast against predictions [N, C]", params=dict(red)),
            _edge(f"edge_{short}_broadcast_col", loss, x, [[1.0], [-1.0]],
                  "targets [N, 1] broadcast against predictions [N, C]", params=dict(mean_only)),
            _edge(f"edge_{short}_huge", loss, [1e20, -3e19, 1e5], [0.0, 1e19, -1e5],
                  "differences of 1e20: the square overflows float32 and narrower", params=dict(mean_only)),
            _edge(f"edge_{short}_tiny", loss, [1e-30, 3e-30, 0.0], [0.0, 1e-30, 1e-30],
                  "differences of 1e-30: the square underflows float32 (1e-60)", params=dict(mean_only)),
            _edge(f"edge_{short}_inf", loss, [_INF, 1.0], [_INF, 0.0], "inf - inf = NaN in a prediction",
                  params=dict(mean_only), nonfinite=True),
            _edge(f"edge_{short}_nan", loss, [_NAN, 1.0], [0.0, 0.0], "a NaN prediction", params=dict(red),
                  nonfinite=True),
        ]
    out += [
        _edge("edge_mse_sum", "mean_squared_error", x, [[0.5, -1.0, 3.5], [1.0, 1.0, 1.0]], "reduction sum",
              params={"reduction": "sum"}),
        _edge("edge_mse_n0", "mean_squared_error", np.zeros((0, 3)), np.zeros((0, 3)), "N = 0",
              params={"reduction": "sum"}),
        _edge("edge_mae_equal", "mean_absolute_error", [1.0, -2.0, 0.0], [1.0, -2.0, 0.0],
              "predictions equal to targets: the kink of |x - y| (gradient 0 by convention)"),
        _edge("edge_mae_sum", "mean_absolute_error", x, [[0.5, -1.0, 3.5], [1.0, 1.0, 1.0]], "reduction sum",
              params={"reduction": "sum"}),
        _edge("edge_rmse_equal", "root_mean_squared_error", [1.0, -2.0], [1.0, -2.0],
              "all errors 0: value 0, no gradient (NaN)", params={"reduction": "mean"}, nonfinite=True),
        _edge("edge_rmse_n1", "root_mean_squared_error", [3.0], [-1.0], "one element: |x - y|",
              params={"reduction": "mean"}),
    ]
    return out


def _smooth_labels_edges() -> list[Case]:
    onehot = _onehot([1, 2, 0], 3)
    out = [
        _edge(f"edge_smooth_eps_{str(eps).replace('.', '_')}", "smooth_labels", onehot,
              note=f"eps = {eps} on one-hot labels (1 gives uniform 1/C)", params={"label_smoothing": eps})
        for eps in (0.0, 0.1, 1.0)
    ]
    out += [
        _edge("edge_smooth_soft", "smooth_labels", [[0.4, 0.1, 0.5], [0.3, 0.6, 0.1]],
              note="soft labels", params={"label_smoothing": 0.2}),
        _edge("edge_smooth_c1", "smooth_labels", [[1.0], [1.0]], note="C = 1: always 1",
              params={"label_smoothing": 0.1}),
        _edge("edge_smooth_c1000", "smooth_labels", np.eye(1000)[[3, 999]], note="C = 1000: eps/C = 1e-4",
              params={"label_smoothing": 0.1}),
        _edge("edge_smooth_n0", "smooth_labels", np.zeros((0, 4)), note="N = 0", params={"label_smoothing": 0.1}),
    ]
    return out


def _log_softmax_extra_edges() -> list[Case]:
    return [
        _edge("edge_log_softmax_subnormal_f32", "log_softmax", [[0.0, -100.0]],
              note="softmax exp(-100) = 3.7e-44 subnormal in float32; log_softmax stays -100", dtypes=_F32),
        _edge("edge_softmax_subnormal_f32", "softmax", [[0.0, -100.0, -101.0]],
              note="softmax values 3.7e-44 and 1.4e-44, subnormal in float32", dtypes=_F32),
        _edge("edge_softmax_subnormal_f16", "softmax", [[0.0, -12.0, -16.0]],
              note="softmax values 6.1e-6 and 1.1e-7, subnormal in float16", dtypes=_F16),
    ]


def _linear_cross_entropy_edges() -> list[Case]:
    """Fused linear cross-entropy: common logit offsets, peaked rows, ignored rows, smoothing, class
    weights, one class, and a 4096-term dot product in bfloat16 (float32 accumulation needed)."""
    from lossconf.random_cases import linear_inputs

    loss, ignore = "linear_cross_entropy", -100
    rng = np.random.default_rng(17)
    n, d, v = 6, 16, 100
    h, y, p = linear_inputs(rng, n, d, v)
    # offsets of 1e4 only where u |z| << 1: in bfloat16 (ulp(1e4) = 64) rounding the logits changes p by
    # factors e^32, outside any first-order error model; 1e2 there (ulp 0.5)
    bias = rng.standard_normal(v)
    out = [_edge(f"edge_lce_offset_bias_{label}", loss, h, y, f"every logit offset by {label} through the bias: "
                 "softmax cancels it, a kernel that does not subtract the row max overflows",
                 params={**p, "linear_bias": offset + bias, "reduction": "mean"}, dtypes=dtypes)
           for label, offset, dtypes in (("1e4", 1e4, ("float32", "float64")), ("1e2", 1e2, ("bfloat16", "float16")))]
    h2, y2, p2 = linear_inputs(rng, n, d, v, offset=1e4)  # float32/float64 (see above)
    out.append(_edge("edge_lce_offset_hw_1e4", loss, h2, y2, "every logit offset by 1e4 through h W^T "
                     "(h_0 = 1, W_v0 += 1e4): the products carry the offset, the dot products' rounding grows "
                     "with it", params={**p2, "reduction": "sum"}, dtypes=("float32", "float64")))
    # peaked rows: logits in [50, 60] with one at 70 (the label in even rows, another class in odd rows)
    z = rng.uniform(50, 60, (n, v))
    peak = np.where(np.arange(n) % 2 == 0, y, (y + 1) % v)
    z[np.arange(n), peak] = 70.0
    hp = np.linalg.qr(rng.standard_normal((d, n)))[0].T  # orthonormal rows: W = Z^T through h's pseudo-inverse
    out.append(_edge("edge_lce_peaked_70", loss, hp, y, "peaked rows: logits 50-60 and one at 70 (the label "
                     "or not): softmax is within e^-10 of one-hot, gradients cancel at the peak",
                     params={"linear_weight": (hp.T @ z).T, "reduction": "none"}))
    ignored = np.where(np.arange(n) % 3 == 0, ignore, y)
    out += [
        _edge("edge_lce_ignore_rows", loss, h, ignored, "a third of the rows ignored (padding): mean over the kept",
              params={**p, "ignore_index": ignore, "reduction": "mean"}),
        _edge("edge_lce_ignore_all", loss, h, np.full(n, ignore), "every row ignored: mean is 0/0 = NaN",
              params={**p, "ignore_index": ignore, "reduction": "mean"}, nonfinite=True),
        _edge("edge_lce_weight_ignore", loss, h, ignored, "class weights with ignored rows: mean divides by "
              "the kept rows' weights", params={**p, "ignore_index": ignore, "reduction": "mean",
                                                "weight": rng.uniform(0.1, 3, v)}),
        _edge("edge_lce_smoothing_0_1", loss, h, y, "label smoothing 0.1: every class gets eps/V",
              params={**p, "label_smoothing": 0.1, "reduction": "mean"}),
        _edge("edge_lce_smoothing_1", loss, h, y, "label smoothing 1: uniform targets",
              params={**p, "label_smoothing": 1.0, "reduction": "sum"}),
        _edge("edge_lce_one_class", loss, h, np.zeros(n, np.int64), "V = 1: the loss is 0, every gradient 0",
              params={"linear_weight": p["linear_weight"][:1], "reduction": "none"}),
    ]
    hl, _, pl = linear_inputs(rng, 4, 8, 1000)
    out.append(_edge("edge_lce_labels_above_256", loss, hl, [257, 999, 300, 5], "labels above 256 are not "
                     "bfloat16 numbers (257 -> 256, 999 -> 1000): an API that casts labels to the float dtype "
                     "picks another class", params={**pl, "reduction": "none"}))
    hb, yb, pb = linear_inputs(rng, 8, 4096, 256)
    out.append(_edge("edge_lce_bf16_dot_4096", loss, hb, yb, "bfloat16 with D = 4096: the error model's "
                     "gamma_D assumes float32 accumulation (mixed precision), as every framework's GEMM does",
                     params={**pb, "reduction": "none"}, dtypes=("bfloat16",)))
    return out


def _focal_edges() -> list[Case]:
    """Sigmoid focal loss where p -> 0 and 1 (the focal factor underflows), and gamma = 0."""
    x, z = [30.0, -30.0, 1e4, -1e4, 0.5, -2.0], [1.0, 0.0, 1.0, 1.0, 0.0, 0.3]
    return [
        _edge("edge_focal_confident", "sigmoid_focal_loss", x, z,
              "p -> 1 and 0: (1 - p_t)^2 underflows where right, the loss is ~|x| where wrong (x = -1e4, z = 1)",
              params={"alpha": 0.25}),
        _edge("edge_focal_gamma_0", "sigmoid_focal_loss", x, z,
              "gamma = 0: alpha-weighted sigmoid cross-entropy", params={"gamma": 0.0, "alpha": 0.25}),
        _edge("edge_focal_gamma_0_no_alpha", "sigmoid_focal_loss", [[0.7, -1.2], [3.0, 0.0]], [[1.0, 0.0], [0.5, 1.0]],
              "gamma = 0 without alpha: plain sigmoid cross-entropy, reduction mean",
              params={"gamma": 0.0, "reduction": "mean"}),
        _edge("edge_focal_16", "sigmoid_focal_loss", [16.0, -16.0, 17.0, -20.0], [0.0, 1.0, 1.0, 0.0],
              "|x| of 16-20: sigmoid within 1e-7 of 0 or 1 (the Keras clip bounds)", dtypes=_WIDE,
              params={"reduction": "sum"}),
        _edge("edge_focal_inf_nan", "sigmoid_focal_loss", [_INF, -_INF, _NAN], [1.0, 1.0, 0.0],
              "+-inf and NaN logits", nonfinite=True),
        _edge("edge_focal_n0", "sigmoid_focal_loss", np.zeros((0, 3)), np.zeros((0, 3)), "N = 0",
              params={"reduction": "sum"}),
    ]


def _cosine_edges() -> list[Case]:
    """Cosine similarity with a zero vector, (anti)parallel vectors, D = 1, and norms that overflow or underflow."""
    loss = "cosine_similarity"
    return [
        _edge("edge_cosine_zero_vector", loss, [[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]], [[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]],
              "a zero vector on either side: 0/0, NaN (the floor variants give 0)", nonfinite=True),
        _edge("edge_cosine_parallel", loss, [[1.0, 2.0, 2.0], [3.0, -4.0, 0.0]], [[2.0, 4.0, 4.0], [-3.0, 4.0, 0.0]],
              "parallel and antiparallel: +1 and -1, gradient 0", params={"reduction": "sum"}),
        _edge("edge_cosine_d1", loss, [[2.0], [-0.5]], [[3.0], [4.0]], "D = 1: the sign of x y",
              params={"reduction": "mean"}),
        _edge("edge_cosine_huge", loss, [[1e20, 3e19, -2e19]], [[2e19, -1e20, 5e19]],
              "components of 1e20: the squared norm overflows float32 unless scaled", dtypes=("float64",)),
        _edge("edge_cosine_tiny", loss, [[1e-30, 3e-30, 0.0]], [[2e-30, 1e-30, 1e-30]],
              "components of 1e-30: the squared norm underflows float32 (1e-60)", dtypes=("float64",)),
        _edge("edge_cosine_axis1", loss, np.arange(12.0).reshape(2, 3, 2) - 5,
              np.arange(12.0).reshape(2, 3, 2)[::-1] - 3, "vectors along axis 1 of [N, D, d]", params={"axis": 1}),
        _edge("edge_cosine_n0", loss, np.zeros((0, 3)), np.zeros((0, 3)), "N = 0", params={"reduction": "sum"}),
    ]


def _robust_regression_edges() -> list[Case]:
    """Huber and smooth L1 at their switch points, log-cosh where cosh overflows, Poisson at zero counts."""
    x, y = [1.5, -0.5, 3.0, 0.25, 2.0], [0.5, 0.5, 0.0, 0.0, 2.0]  # d = 1, -1, 3, 0.25, 0
    out = [
        _edge("edge_huber_at_delta", "huber", x, y, "|d| = delta = 1 exactly (and d = 0): both branches meet"),
        _edge("edge_huber_at_delta_2", "huber", [2.0, -2.0, 5.0], [0.0, 0.0, 1.0],
              "|d| = delta = 2 exactly, reduction mean", params={"delta": 2.0, "reduction": "mean"}),
        _edge("edge_huber_huge", "huber", [1e20, -3e19, 1e5], [0.0, 1e19, -1e5],
              "|d| up to 1e20: linear side, no square to overflow", params={"reduction": "sum"}),
        _edge("edge_huber_inf_nan", "huber", [_INF, _NAN, 1.0], [0.0, 0.0, _INF], "+-inf and NaN differences",
              nonfinite=True),
        _edge("edge_smooth_l1_at_beta", "smooth_l1", x, y, "|d| = beta = 1 exactly (and d = 0)"),
        _edge("edge_smooth_l1_beta_0", "smooth_l1", x, y, "beta = 0: the absolute error, gradient 0 at d = 0",
              params={"beta": 0.0}),
        _edge("edge_smooth_l1_beta_0_mean", "smooth_l1", [[1.0, -2.0], [0.0, 4.0]], [[1.0, 0.0], [0.5, 4.0]],
              "beta = 0 with reduction mean", params={"beta": 0.0, "reduction": "mean"}),
        _edge("edge_smooth_l1_at_beta_2", "smooth_l1", [2.0, -2.0, 0.5], [0.0, 0.0, 0.0],
              "|d| = beta = 2 exactly", params={"beta": 2.0, "reduction": "sum"}),
        _edge("edge_log_cosh_small", "log_cosh", [1e-4, -3e-3, 0.0, 0.5], [0.0, 0.0, 0.0, 0.5],
              "|d| <= 1e-3: log cosh d ~ d^2 / 2 (log of a rounded cosh loses it)"),
        _edge("edge_log_cosh_89", "log_cosh", [89.0, -100.0, 1e4], [0.0, 0.0, 0.0],
              "|d| of 89 to 1e4: cosh overflows float32 (naive log(cosh) = inf)", dtypes=_WIDE,
              params={"reduction": "mean"}),
        _edge("edge_log_cosh_12_f16", "log_cosh", [12.0, -20.0, 11.0], [0.0, 0.0, 0.0],
              "|d| of 11 to 20: cosh overflows float16 at 12", dtypes=_F16),
        _edge("edge_poisson_zero_counts", "poisson_nll", [-1.0, 0.0, 2.0], [0.0, 0.0, 0.0],
              "log_input, counts 0: exp(x)"),
        _edge("edge_poisson_rate_zero_counts", "poisson_nll", [0.0, 0.5, 3.0], [0.0, 0.0, 0.0],
              "rates with counts 0: 0 log 0 = 0, loss x (also at rate 0)", params={"log_input": False}),
        _edge("edge_poisson_rate_zero", "poisson_nll", [0.0, 0.5], [2.0, 1.0],
              "rate 0 under a count > 0: +inf (finite with the log offset variants)", params={"log_input": False},
              nonfinite=True),
        _edge("edge_poisson_full", "poisson_nll", [0.5, -1.0, 2.0, 1.0], [0.0, 1.0, 2.0, 10.0],
              "full=True: Stirling term only where y > 1", params={"full": True, "reduction": "sum"}),
        _edge("edge_poisson_full_rate", "poisson_nll", [0.5, 1.0, 2.0, 7.0], [0.0, 1.0, 2.0, 10.0],
              "full=True on rates, reduction mean", params={"full": True, "log_input": False, "reduction": "mean"}),
        _edge("edge_poisson_big_log_rate", "poisson_nll", [80.0, -80.0, 10.0], [3.0, 0.0, 100.0],
              "log-rates of +-80: exp overflows float16 and bfloat16 is coarse", dtypes=_WIDE),
    ]
    for loss in ("huber", "smooth_l1", "log_cosh", "hinge", "squared_hinge"):
        out.append(_edge(f"edge_{loss}_n0", loss, np.zeros((0, 3)), np.zeros((0, 3)), "N = 0",
                         params={"reduction": "sum"}))
    return out


def _margin_edges() -> list[Case]:
    x, y = [1.0, -1.0, 0.5, 2.0, 0.0, -3.0], [1.0, -1.0, 1.0, 1.0, -1.0, 1.0]  # margins 0, 0, .5, -1, 1, 4
    return [
        _edge("edge_hinge_at_margin", "hinge", x, y,
              "y x = 1 exactly (twice): the kink, gradient 0 canonically (variants: half or all of -y)"),
        _edge("edge_hinge_huge", "hinge", [1e20, -1e20, 3e4], [1.0, 1.0, -1.0], "decision values up to 1e20",
              params={"reduction": "mean"}),
        _edge("edge_hinge_inf_nan", "hinge", [_INF, -_INF, _NAN], [1.0, 1.0, -1.0], "+-inf and NaN decision values",
              nonfinite=True),
        _edge("edge_squared_hinge_at_margin", "squared_hinge", x, y, "y x = 1 exactly: value and gradient 0",
              params={"reduction": "mean"}),
        _edge("edge_squared_hinge_big", "squared_hinge", [-300.0, 300.0], [1.0, -1.0],
              "margin 301: the square 90601 overflows float16"),
    ]


def _ctc_edges() -> list[Case]:
    """CTC: repeated labels (a blank between), an empty target, a target too long for its input (+inf, or 0 under
    zero_infinity), the blank at 0 and at C - 1, one frame per label, padding frames, peaked logits, N = 0."""
    loss = "ctc"
    x = np.array([[[0.5, -1.0, 2.0, 0.0], [1.5, 0.25, -0.5, 1.0], [-2.0, 1.0, 0.0, 0.5],
                   [0.0, 0.0, 3.0, -1.0], [1.0, 2.0, -1.0, 0.0]]])  # [1, T = 5, C = 4]
    x2 = np.concatenate([x, x[:, ::-1] * 0.5])  # [2, 5, 4]
    return [
        _edge("edge_ctc_repeated_labels", loss, x[:, :3], [[2, 2]],
              "labels (2, 2) in T = 3 frames: the only alignment is 2, blank, 2"),
        _edge("edge_ctc_repeated_too_short", loss, x[:, :2], [[2, 2]],
              "labels (2, 2) in T = 2 frames: a repeat needs a blank between, no alignment: +inf", nonfinite=True),
        _edge("edge_ctc_repeated_zero_infinity", loss, x[:, :2], [[2, 2]],
              "as edge_ctc_repeated_too_short with zero_infinity: loss 0, gradient 0",
              params={"zero_infinity": True}),
        _edge("edge_ctc_empty_target", loss, x2, [[1, 3], [2, 1]], "target lengths 0 and 2: the first is all blanks",
              params={"target_lengths": [0, 2]}),
        _edge("edge_ctc_target_too_long", loss, x2, [[1, 2, 3, 1, 2, 3], [3, 1, 1, 2, 2, 1]],
              "6 labels for 5 frames (and 4 input frames for 3 labels): +inf", nonfinite=True,
              params={"input_lengths": [5, 4], "target_lengths": [6, 3], "reduction": "none"}),
        _edge("edge_ctc_target_too_long_zero_infinity", loss, x2, [[1, 2, 3, 1, 2, 3], [3, 1, 1, 2, 2, 1]],
              "a target too long under zero_infinity: that sequence gives 0, the other counts (mean)",
              params={"input_lengths": [5, 5], "target_lengths": [6, 3], "zero_infinity": True, "reduction": "mean"}),
        _edge("edge_ctc_blank_last", loss, x2, [[0, 1], [2, 2]], "blank = C - 1 = 3; labels include class 0",
              params={"blank": 3}),
        _edge("edge_ctc_blank_first", loss, x2, [[3, 1], [2, 2]], "blank = 0 given explicitly, reduction sum",
              params={"blank": 0, "reduction": "sum"}),
        _edge("edge_ctc_one_frame_per_label", loss, x[:, :4], [[1, 3, 2, 1]],
              "T = L = 4, no repeats: one alignment, -sum of the path's log-probabilities"),
        _edge("edge_ctc_padding_frames", loss, np.concatenate([x2[:, :3], np.full((2, 2, 4), 1e4)], axis=1),
              [[1, 2], [3, 0]], "frames past the input lengths hold 1e4: ignored, gradient 0 there",
              params={"input_lengths": [3, 2], "target_lengths": [2, 1]}),
        _edge("edge_ctc_peaked", loss, np.where(np.eye(4)[[0, 1, 0, 2, 0]] > 0, 30.0, -30.0)[None], [[1, 2]],
              "logits +-30: the alignment blank 1 blank 2 blank is near certain, loss ~0", dtypes=_WIDE),
        _edge("edge_ctc_nan", loss, np.where(np.arange(4) == 1, _NAN, x2), [[1, 2], [3, 1]],
              "a NaN logit in every sequence's used frames: NaN", nonfinite=True),
        _edge("edge_ctc_n0", loss, np.zeros((0, 5, 4)), np.zeros((0, 2), int), "N = 0", params={"reduction": "sum"}),
    ]


@cache
def _edge_catalog() -> tuple[Case, ...]:
    cases = (_softmax_family_edges() + _softmax_cross_entropy_edges() + _sparse_edges() + _sigmoid_family_edges()
             + _probability_edges() + _kl_edges() + _regression_edges() + _smooth_labels_edges()
             + _log_softmax_extra_edges() + _robust_regression_edges() + _margin_edges()
             + _focal_edges() + _cosine_edges() + _linear_cross_entropy_edges() + _ctc_edges())
    return tuple(cases)


def edge_cases() -> list[Case]:
    """The named edge catalog (fresh copies: callers may not mutate the shared arrays)."""
    return [replace(c, first=c.first.copy(), second=None if c.second is None else c.second.copy(),
                    params={k: v.copy() if isinstance(v, np.ndarray) else v for k, v in c.params.items()})
            for c in _edge_catalog()]


EDGE_CASES: tuple[Case, ...] = _edge_catalog()  # shared records; edge_cases() returns copies

