"""Known deviations as mechanisms: the loader's validation, every input condition and model.

No framework runs here: a deviating result is written out in NumPy from the mechanism's own
description (e.g. Paddle's softmax with x - max(x) clipped at -64), independently of
``lossconf.known_models``, and judged like a framework result. Each model must explain the result it
describes and must not explain a result that deviates differently.
"""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from lossconf.cases import make_case
from lossconf.errormodel import compare
from lossconf.known import KNOWN_DIR, load_known, load_known_file
from lossconf.known_models import INPUTS, MODELS, evaluate_model, input_facts
from lossconf.reference import kappa
from lossconf.verdicts import Truths, apply_known, base_record, cast_inputs, judge

KNOWN = {k.id: k for k in load_known()}
VERSION = {"torch": "2.13.0", "paddle": "3.3.1", "tensorflow": "2.21.0", "jax": "0.10.2", "keras_jax": "3.15.1",
           "keras_torch": "3.15.1"}


def _verdict(entry_id: str, case, dtype: str, quantity: str, got, variant: str | None = None,
             impl_name: str = "") -> dict:
    """Judge ``got`` as the result of the entry's implementation (``impl_name`` for an entry of every
    implementation, '*'), in the entry's first mode, then apply the registry."""
    entry = KNOWN[entry_id]
    impl = {"name": impl_name or entry.impl, "api": impl_name or entry.impl, "variant": variant}
    record = base_record(case, entry.adapter, impl, dtype, quantity, mode=(entry.modes or ("",))[0])
    judge(record, case, impl, dtype, np.asarray(got), Truths())
    return apply_known(record, case, list(KNOWN.values()), VERSION[entry.adapter])


# -- the loader ------------------------------------------------------------------------------------

def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "torch.toml"
    path.write_text('[[known]]\nid = "x"\nimpl = "softmax"\nquantity = "value"\nversions = ">=1"\n'
                    'link = "https://example.org"\ndescription = "d"\n' + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(("body", "words"), [
    ('cases = ["rand_softmax_003"]\n', ["'cases'", "rand_softmax_003", "document and edge"]),
    ('model = "clip_65"\n', ["'model'", "clip_65", "clip_64"]),
    ('inputs = ["logit_gap"]\n', ["'inputs'", "logit_gap", "label_smoothing"]),
    ('when = ["sometimes"]\n', ["'when'", "sometimes", "marginal"]),
    ('inputs = "label_smoothing"\n', ["'inputs'", "must be a list"]),
])
def test_loader_rejects_with_a_clear_error(tmp_path, body, words) -> None:
    with pytest.raises(ValueError) as err:
        load_known_file(_write(tmp_path, body))
    assert all(w in str(err.value) for w in words), str(err.value)


def test_loader_accepts_mechanisms_and_fixed_case_ids(tmp_path) -> None:
    path = _write(tmp_path, 'cases = ["edge_softmax_*", "doc001_x"]\nmodel = "clip_64"\n'
                            'inputs = ["label_smoothing"]\nwhen = ["marginal"]\n')
    (entry,) = load_known_file(path)
    assert (entry.model, entry.inputs, entry.when) == ("clip_64", ("label_smoothing",), ("marginal",))


def test_a_shared_keras_entry_is_matched_on_every_keras_adapter_by_keras_version() -> None:
    entries = [k for k in load_known() if k.id == "keras-empty-batch-cce-logits"]
    assert sorted(k.adapter for k in entries) == ["keras_jax", "keras_torch", "tensorflow"]
    entry = next(k for k in entries if k.adapter == "tensorflow")
    args = ("tensorflow", entry.impl, "value", "float32", "edge_sce_n0_sum")
    assert entry.matches(*args, {"version": "2.21.0", "flags": {"keras": "3.15.1"}}, frozenset({"error"}))
    assert not entry.matches(*args, {"version": "2.21.0", "flags": {"keras": "2.15.0"}}, frozenset({"error"}))
    assert not entry.matches("keras_jax", *args[1:], {"version": "3.15.1", "flags": {"keras": "3.15.1"}})


def test_shipped_registry_names_no_random_case() -> None:
    assert KNOWN, "no known deviations loaded"
    for entry in KNOWN.values():
        assert all(p.startswith(("edge_", "doc", "inv_")) for p in entry.cases), entry.id
    assert {"jax.toml", "paddle.toml", "tensorflow.toml", "torch.toml"} <= {p.name for p in KNOWN_DIR.glob("*.toml")}


# -- input conditions ------------------------------------------------------------------------------

CONDITIONS = [
    # (condition, holds on, does not hold on); each pair differs only in what the condition looks at
    ("difference_above_sqrt_max",
     make_case("c", "mean_squared_error", [[300.0, 1.0]], [[0.0, 1.0]], kind="edge"),
     make_case("c", "mean_squared_error", [[250.0, 1.0]], [[0.0, 1.0]], kind="edge"), "float16"),
    ("difference_exactly_zero",  # bfloat16 arrays are not np.floating
     make_case("c", "mean_absolute_error", [[0.5, 1.0]], [[0.5, 0.0]], kind="edge"),
     make_case("c", "mean_absolute_error", [[0.5, 1.0]], [[0.25, 0.0]], kind="edge"), "bfloat16"),
    ("label_inexact_in_dtype",
     make_case("c", "sparse_softmax_cross_entropy", np.zeros((1, 300)), [257], kind="edge"),
     make_case("c", "sparse_softmax_cross_entropy", np.zeros((1, 300)), [256], kind="edge"), "bfloat16"),
    ("batch_sum_overflows",
     make_case("c", "mean_squared_error", np.full((1, 4), 200.0), np.zeros((1, 4)), kind="edge",
               params={"reduction": "mean"}),
     make_case("c", "mean_squared_error", np.full((1, 4), 120.0), np.zeros((1, 4)), kind="edge",
               params={"reduction": "mean"}), "float16"),
    ("label_smoothing",
     make_case("c", "softmax_cross_entropy", [[0.0, 1.0]], [[1.0, 0.0]], kind="edge",
               params={"label_smoothing": 0.1}),
     make_case("c", "softmax_cross_entropy", [[0.0, 1.0]], [[1.0, 0.0]], kind="edge"), "float32"),
    ("smoothing_sum_overflows",
     make_case("c", "sparse_softmax_cross_entropy", np.tile(np.linspace(0, -300, 1000), (1, 1)), [0], kind="edge",
               params={"label_smoothing": 0.1}),
     make_case("c", "sparse_softmax_cross_entropy", np.tile(np.linspace(0, -100, 1000), (1, 1)), [0], kind="edge",
               params={"label_smoothing": 0.1}), "float16"),
    ("softmax_sum_at_least_256",
     make_case("c", "softmax", np.zeros((1, 256)), kind="edge"),
     make_case("c", "softmax", np.zeros((1, 255)), kind="edge"), "float16"),
    ("all_labels_ignored",
     make_case("c", "sparse_softmax_cross_entropy", np.zeros((2, 3)), [-100, -100], kind="edge",
               params={"ignore_index": -100, "reduction": "mean"}),
     make_case("c", "sparse_softmax_cross_entropy", np.zeros((2, 3)), [-100, 1], kind="edge",
               params={"ignore_index": -100, "reduction": "mean"}), "float32"),
    ("probability_zero_positive_target",
     make_case("c", "categorical_cross_entropy", [[0.0, 1.0]], [[0.5, 0.5]], kind="edge"),
     make_case("c", "categorical_cross_entropy", [[0.0, 1.0]], [[0.0, 1.0]], kind="edge"), "float32"),
    ("logit_exactly_zero",  # 1e-8 rounds to 0 only in float16 (its smallest subnormal is 6e-8)
     make_case("c", "sigmoid_cross_entropy", [[1e-8, 1.0]], [[0.5, 1.0]], kind="edge"),
     make_case("c", "sigmoid_cross_entropy", [[1e-4, 1.0]], [[0.5, 1.0]], kind="edge"), "float16"),
    ("reduced",
     make_case("c", "mean_squared_error", [[1.0]], [[0.0]], kind="edge", params={"reduction": "mean"}),
     make_case("c", "mean_squared_error", [[1.0]], [[0.0]], kind="edge", params={"reduction": "none"}), "float32"),
    ("first_has_zero_vector",
     make_case("c", "cosine_similarity", [[0.0, 0.0], [1.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]], kind="edge"),
     make_case("c", "cosine_similarity", [[0.0, 1e-3], [1.0, 2.0]], [[0.0, 0.0], [1.0, 1.0]], kind="edge"), "float32"),
    ("first_square_subnormal",
     make_case("c", "kl_divergence", [[0.007, 0.993]], [[0.5, 0.5]], kind="edge", params={"log_input": False}),
     make_case("c", "kl_divergence", [[0.008, 0.992]], [[0.5, 0.5]], kind="edge", params={"log_input": False}),
     "float16"),
    ("ctc_no_alignment",  # 1 1 needs a blank between: 3 frames, the input has 2
     make_case("c", "ctc", np.zeros((1, 2, 3)), [[1, 1]], kind="edge"),
     make_case("c", "ctc", np.zeros((1, 2, 3)), [[1, 2]], kind="edge"), "float32"),
    ("ctc_labels_width_zero",
     make_case("c", "ctc", np.zeros((1, 2, 3)), np.zeros((1, 0)), kind="edge"),
     make_case("c", "ctc", np.zeros((1, 2, 3)), [[1]], kind="edge"), "float32"),
    ("ctc_all_targets_empty",
     make_case("c", "ctc", np.zeros((1, 2, 3)), [[1]], kind="edge", params={"target_lengths": [0]}),
     make_case("c", "ctc", np.zeros((1, 2, 3)), [[1]], kind="edge", params={"target_lengths": [1]}), "float32"),
    ("ctc_mean_with_empty_target",
     make_case("c", "ctc", np.zeros((2, 2, 3)), [[1], [2]], kind="edge",
               params={"reduction": "mean", "target_lengths": [0, 1]}),
     make_case("c", "ctc", np.zeros((2, 2, 3)), [[1], [2]], kind="edge",
               params={"reduction": "none", "target_lengths": [0, 1]}), "float32"),
]


def test_every_input_condition_is_tested() -> None:
    assert sorted(c[0] for c in CONDITIONS) == sorted(INPUTS)


@pytest.mark.parametrize(("name", "holds", "fails", "dtype"), CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_input_condition(name, holds, fails, dtype) -> None:
    assert name in input_facts(cast_inputs(holds, dtype), dtype, holds.loss)
    assert name not in input_facts(cast_inputs(fails, dtype), dtype, fails.loss)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_input_conditions_hold_for_every_dtype(name) -> None:
    """Each condition evaluates in every dtype (np.finfo does not know bfloat16: the sweep crashed on it)."""
    for _, holds, _, _ in [c for c in CONDITIONS if c[0] == name]:
        for dtype in ("float16", "bfloat16", "float32", "float64"):
            assert isinstance(input_facts(cast_inputs(holds, dtype), dtype, holds.loss), set)


def test_smoothing_overflow_counts_the_batch_for_sum() -> None:
    """16 rows each below float16's max, whose sum is not: 'sum' overflows, 'none' does not."""
    x = np.tile(np.linspace(0, -70, 1000), (16, 1))
    for reduction, expected in (("sum", True), ("none", False)):
        case = make_case("c", "sparse_softmax_cross_entropy", x, [0] * 16, kind="edge",
                         params={"label_smoothing": 0.5, "reduction": reduction})
        assert ("smoothing_sum_overflows" in input_facts(cast_inputs(case, "float16"), "float16")) is expected


# -- models ----------------------------------------------------------------------------------------

def _paddle_softmax(x: np.ndarray, clip: float) -> np.ndarray:
    """Paddle's CPU softmax as its source reads: x - max(x) clipped below, exp, normalised."""
    shifted = np.maximum(x - x.max(axis=-1, keepdims=True), -clip)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def test_clip_64_explains_paddle_softmax_and_nothing_else() -> None:
    case = make_case("edge_test_gap", "softmax", [[0.0, -100.0, 1.0, -300.0]], kind="edge")
    assert _verdict("paddle-softmax-clip-64", case, "float64", "value", _paddle_softmax(case.first, 64))["verdict"] \
        == "known"
    # clipped at -50 instead: deviates as well, but not as the model says
    assert _verdict("paddle-softmax-clip-64", case, "float64", "value", _paddle_softmax(case.first, 50))["verdict"] \
        == "fail"


def test_clip_64_for_log_softmax_under_every_dtype() -> None:
    case = make_case("edge_test_gap", "log_softmax", [[0.0, -100.0, 3.0]], kind="edge")
    for dtype in ("float32", "float64"):
        x = case.first.astype(dtype)
        shifted = np.maximum(x - x.max(), -64)
        got = (shifted - np.log(np.exp(shifted).sum())).astype(dtype)
        assert _verdict("paddle-log-softmax-clip-64", case, dtype, "value", got)["verdict"] == "known"
        assert _verdict("paddle-log-softmax-clip-64", case, dtype, "value", got - 1)["verdict"] == "fail"


def test_bce_backward_eps_tells_the_float32_constant_from_the_double() -> None:
    """torch's kernel floors p (1 - p) at a float 1e-12 (1/eps = 1.000000004e12), Paddle's at a double."""
    case = make_case("edge_test_bce", "binary_cross_entropy", [0.0, 0.5], [1.0, 1.0], kind="edge")
    by_float = np.array([-1 / float(np.float32(1e-12)), -2.0])
    by_double = np.array([-1e12, -2.0])
    torch, paddle = "torch-bce-grad-eps-1e-12", "paddle-bce-grad-eps-1e-12"
    assert _verdict(torch, case, "float64", "grad", by_float, "log_clamp_-100")["verdict"] == "known"
    assert _verdict(torch, case, "float64", "grad", by_double, "log_clamp_-100")["verdict"] == "fail"
    assert _verdict(paddle, case, "float64", "grad", by_double, "log_clamp_-100")["verdict"] == "known"
    assert _verdict(paddle, case, "float64", "grad", by_float, "log_clamp_-100")["verdict"] == "fail"


def test_mean_over_all_samples_explains_paddle_ignore_index_mean() -> None:
    x = np.array([[0.0, 1.0], [2.0, 0.0], [0.5, 0.5], [1.0, 3.0]])
    labels = np.array([1, -100, 0, -100])
    case = make_case("edge_test_ignore", "sparse_softmax_cross_entropy", x, labels, kind="edge",
                     params={"reduction": "mean", "ignore_index": -100})
    kept = labels != -100
    per_sample = np.log(np.exp(x).sum(axis=1)) - x[np.arange(4), np.where(kept, labels, 0)]
    entry = "paddle-ce-mean-negative-ignore-index"
    assert _verdict(entry, case, "float64", "value", per_sample[kept].sum() / 4, "all_ignored_zero")["verdict"] \
        == "known"
    # divided by the kept count is canonical; divided by 3 matches neither
    assert _verdict(entry, case, "float64", "value", per_sample[kept].sum() / 3, "all_ignored_zero")["verdict"] \
        == "fail"


def test_smoothing_over_last_axis_explains_keras_axis_1() -> None:
    """Classes on axis 1 of [N, C, d]: Keras smooths with eps / d (the last axis) instead of eps / C."""
    x = np.array([[[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]])  # N = 1, C = 3, d = 2
    t = np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])
    eps = 0.2
    case = make_case("edge_test_axis", "softmax_cross_entropy", x, t, kind="edge",
                     params={"axis": 1, "label_smoothing": eps})
    log_p = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    keras = -(((1 - eps) * t + eps / 2) * log_p).sum(axis=1)
    wrong = -(((1 - eps) * t + eps / 4) * log_p).sum(axis=1)
    entry = "keras-cce-smoothing-ignores-axis"
    assert _verdict(entry, case, "float64", "value", keras)["verdict"] == "known"
    assert _verdict(entry, case, "float64", "value", wrong)["verdict"] == "fail"


def test_computed_in_float32_explains_inductor_float16_cosine_of_a_zero_vector() -> None:
    """Compiled float16: eps = 1e-8 stays a float32 constant, so |0| is floored at 1e-8 (value 0, gradient
    y / (1e-8 |y|) = 3.3e7, inf in float16) where float16 arithmetic rounds eps to 0 (0 / 0 = NaN)."""
    case = make_case("edge_test_zero", "cosine_similarity", [[0.0, 0.0, 0.0]], [[1.0, 2.0, 2.0]], kind="edge")
    entry, variant = "torch-compile-float16-cosine-eps-kept-in-float32", "cosine_norm_floor_1e-8"
    assert _verdict(entry, case, "float16", "value", np.float16([0.0]), variant)["verdict"] == "known"
    assert _verdict(entry, case, "float16", "grad", np.float16([[np.inf, np.inf, np.inf]]), variant)["verdict"] \
        == "known"
    # a zero gradient (the vector simply skipped) is another deviation
    assert _verdict(entry, case, "float16", "grad", np.float16([[0.0, 0.0, 0.0]]), variant)["verdict"] == "fail"


def test_float32_arithmetic_explains_keras_float64_in_float32_only() -> None:
    x, y = np.array([[1.1], [2.3]]), np.array([[0.2], [0.7]])
    case = make_case("edge_test_mse", "mean_squared_error", x, y, kind="edge", params={"reduction": "sum"})
    in_float32 = np.float64(np.sum(((x - y) ** 2).astype(np.float32)))
    entry = "keras_jax-float64-promoted-to-float32"
    impl = "MeanSquaredError"
    assert _verdict(entry, case, "float64", "value", in_float32, impl_name=impl)["verdict"] == "known"
    # a wrong formula (mean for sum) is not float32 rounding
    assert _verdict(entry, case, "float64", "value", in_float32 / 2, impl_name=impl)["verdict"] == "fail"


def test_keras_focal_on_jax_explains_the_op_by_op_sigmoid_and_the_unguarded_logs() -> None:
    """JAX's logistic is 1 / (1 + exp(-x)) op by op: in float32 sigmoid(15.58) is exactly the clip bound
    hi = 0.99999988 (1 + 1.7e-7 rounds to 1 + 2^-23), where jnp.clip's min passes half the gradient; in bfloat16
    sigmoid(5.5625) is 1 (1 + 0.0038 rounds to 1) and hi is 1, so a soft target costs (1 - z) log 0 = inf."""
    entry = "keras_jax-focal-from-logits-clips-the-sigmoid"
    case = make_case("edge_test_focal", "sigmoid_focal_loss", [15.58], [0.0], kind="edge",
                     params={"alpha": None, "gamma": 2.0})
    hi = np.float64(np.float32(1) - np.float32(1e-7))
    ce = -np.log(1 - hi)
    assert _verdict(entry, case, "float32", "value", np.float32([hi**2 * ce]))["verdict"] == "known"
    d_p = 2 * hi * ce + hi**2 * 0.5 / (1 - hi)  # the focal factor's and half the clipped CE's gradient
    assert _verdict(entry, case, "float32", "grad", np.float32([d_p * hi * (1 - hi)]))["verdict"] == "known"
    # no CE gradient at all (p past the bound) is another computation
    assert _verdict(entry, case, "float32", "grad", np.float32([2 * hi * ce * hi * (1 - hi)]))["verdict"] == "fail"
    soft = make_case("edge_test_focal", "sigmoid_focal_loss", [5.5625], [0.1], kind="edge",
                     params={"alpha": None, "gamma": 2.0})
    b = ml_dtypes.bfloat16
    assert _verdict(entry, soft, "bfloat16", "value", np.array([np.inf], b))["verdict"] == "known"
    # torch's log clamped at -100 instead: 0.9 * 100 * q^2 with q = 1 - 0.1 * 1 = 0.9
    assert _verdict(entry, soft, "bfloat16", "value", np.array([0.9**2 * 90.0], b))["verdict"] == "fail"


def test_keras_focal_on_torch_explains_the_log_clamped_at_100() -> None:
    """float16: sigmoid(10) = 0.99995 rounds to 1 = hi, so the clip keeps it; F.binary_cross_entropy clamps
    log(1 - 1) at -100: loss 100 (z = 0, q = 1), where the truth is about 10."""
    entry = "keras_torch-focal-from-logits-clips-the-sigmoid"
    case = make_case("edge_test_focal", "sigmoid_focal_loss", [10.0], [0.0], kind="edge",
                     params={"alpha": None, "gamma": 2.0})
    assert _verdict(entry, case, "float16", "value", np.float16([100.0]))["verdict"] == "known"
    assert _verdict(entry, case, "float16", "value", np.float16([np.inf]))["verdict"] == "fail"


def test_keras_bce_on_torch_explains_the_clamp_and_the_kernel_rounding() -> None:
    """bfloat16 p = 1 (the bound 1 - 1e-7 rounds to 1), z = 0.486: torch's kernel forms fl(fl(z - 1) * -100) =
    fl(-0.515625 * -100) = 51.5 (one rounding of 51.37 gives 51.25); the backward (p - z) / max(0, fl(1e-12))."""
    entry = "keras_torch-bce-probs-torch-kernel"
    b = ml_dtypes.bfloat16
    case = make_case("edge_test_bce", "binary_cross_entropy", [1.0], [0.486328125], kind="edge")
    variant = "clip_probabilities_1e-7"
    assert _verdict(entry, case, "bfloat16", "value", np.array([51.5], b), variant)["verdict"] == "known"
    assert _verdict(entry, case, "bfloat16", "value", np.array([51.25], b), variant)["verdict"] == "fail"
    grad = b(b(1 - b(0.486328125)) / b(np.float32(1e-12)))
    assert _verdict(entry, case, "bfloat16", "grad", np.array([grad], b), variant)["verdict"] == "known"
    # no gradient (as if p were clipped) is another computation
    assert _verdict(entry, case, "bfloat16", "grad", np.array([0.0], b), variant)["verdict"] == "fail"


def test_keras_bce_on_torch_compiled_keeps_the_clip_bounds_in_float32() -> None:
    """compile, bfloat16 p = 1, z = 0.25: inductor clips in float32 at hi = fl32(1 - 1e-7), so the loss is
    -(1 - z) log(1 - hi) = 0.75 * 15.94 = 11.95 (eager: 75, the truth inf); the backward (hi - z) / ((1 - hi) hi)
    in float32 passes the clamp's mask, whose bound rounds to 1 in bfloat16."""
    entry = "keras_torch-compile-bce-probs-float32-clip-bounds"
    b = ml_dtypes.bfloat16
    case = make_case("edge_test_bce", "binary_cross_entropy", [1.0], [0.25], kind="edge")
    variant = "clip_probabilities_1e-7"
    hi = np.float64(np.float32(1 - 1e-7))
    assert _verdict(entry, case, "bfloat16", "value", np.array([-0.75 * np.log(1 - hi)], b), variant)["verdict"] \
        == "known"
    # the clipped log without its weight 1 - z is another computation (eager's 75 is keras_bce_on_torch's)
    assert _verdict(entry, case, "bfloat16", "value", np.array([-np.log(1 - hi)], b), variant)["verdict"] == "fail"
    grad = (hi - 0.25) / ((1 - hi) * hi)
    assert _verdict(entry, case, "bfloat16", "grad", np.array([grad], b), variant)["verdict"] == "known"
    # the mask at the float32 bound (no gradient) is another computation
    assert _verdict(entry, case, "bfloat16", "grad", np.array([0.0], b), variant)["verdict"] == "fail"


def test_keras_focal_on_torch_compiled_clips_the_rounded_sigmoid_at_the_float32_bound() -> None:
    """compile: p = sigmoid(x) leaves its graph rounded to the dtype (1 for bfloat16 x = 8, float16 x = 10), the BCE
    graph clips it in float32 at hi = fl32(1 - 1e-7): ce = -(1 - z) log(1 - hi) = 15.94 (1 - z), rounded to the dtype,
    and the focal graph gives fl((1 - p_t)^2 ce) (eager clamps the log at -100 instead)."""
    entry = "keras_torch-compile-focal-from-logits-float32-clip-bounds"
    hi = np.float64(np.float32(1 - 1e-7))
    for dtype, x, z in (("bfloat16", 8.0, 0.25), ("float16", 10.0, 0.0)):
        dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16
        case = make_case("edge_test_focal", "sigmoid_focal_loss", [x], [z], kind="edge",
                         params={"alpha": None, "gamma": 2.0})
        q = 1 - z  # 1 - p_t with p = 1
        ce = np.float64(dt(-(1 - z) * np.log1p(-hi)))
        assert _verdict(entry, case, dtype, "value", np.array([q**2 * ce], dt))["verdict"] == "known"
        # eager's log clamped at -100 is keras_torch-focal-from-logits-clips-the-sigmoid, not this mode's
        assert _verdict(entry, case, dtype, "value", np.array([q**2 * (1 - z) * 100], dt))["verdict"] == "fail"


def test_computed_in_float32_explains_inductor_kl_target_clipped_at_the_float32_bound() -> None:
    """compile, float16: a target 1.8e-16 is clipped at the float32 constant 1e-7 (eager: float16's 1.19e-7), so
    the gradient -t' / q is -1e-7 / q (0.84 of the truth); a prediction 0 is clipped there too."""
    q, t = 0.0011436271468415725, 1.8441390425334486e-16
    case = make_case("edge_test_kl", "kl_divergence", [[q, 0.5]], [[t, 0.5]], kind="edge",
                     params={"log_input": False})
    h = np.float16
    q16, half = np.float64(h(q)), np.float64(h(0.5))
    grad = np.array([[-np.float64(np.float32(1e-7)) / q16, -1.0]]).astype(h)
    entry, variant = "keras_torch-compile-kl-float32-clip-bound", "clip_probabilities_1e-7"
    assert half == 0.5 and _verdict(entry, case, "float16", "grad", grad, variant)["verdict"] == "known"
    grad[0, 0] = 2 * grad[0, 0]  # a clip at 2e-7 is another computation (0, no clip, is the canonical truth)
    assert _verdict(entry, case, "float16", "grad", grad, variant)["verdict"] == "fail"
    # q = 0 under t = 0.5 costs 0.5 log(0.5 / 1e-7) (eager: 0.5 log(0.5 / 1.19e-7), the declared variant)
    zero = make_case("edge_test_kl", "kl_divergence", [[0.0, 0.5, 0.5]], [[0.5, 0.25, 0.25]], kind="edge",
                     params={"log_input": False})
    value = 0.5 * np.log(0.5 / np.float64(np.float32(1e-7))) + 0.5 * np.log(0.5)
    assert _verdict(entry, zero, "float16", "value", np.array([value], h), variant)["verdict"] == "known"
    value = 0.5 * np.log(0.5 / 2e-7) + 0.5 * np.log(0.5)
    assert _verdict(entry, zero, "float16", "value", np.array([value], h), variant)["verdict"] == "fail"


@pytest.mark.parametrize("entry", ["keras_jax-focal-from-logits-clips-the-sigmoid-float64",
                                   "keras_torch-focal-from-logits-clips-the-sigmoid-float64"])
def test_keras_focal_in_float64_is_the_focal_model_within_float32(entry) -> None:
    """float64 x = 20, z = 0: the clipped CE -log(1 - fl64(1 - 1e-7)) = 16.118, its mean over the last axis
    taken in float32."""
    case = make_case("edge_test_focal", "sigmoid_focal_loss", [[20.0]], [[0.0]], kind="edge",
                     params={"alpha": None, "gamma": 2.0})
    p = 1 / (1 + np.exp(-20.0))
    loss = np.float32(p**2 * -np.log(1 - (1 - 1e-7)))
    assert _verdict(entry, case, "float64", "value", np.float64([[loss]]))["verdict"] == "known"
    assert _verdict(entry, case, "float64", "value", np.float64([[loss * 1.001]]))["verdict"] == "fail"


@pytest.mark.parametrize("entry", ["keras_jax-cce-smoothing-ignores-axis-float64",
                                   "keras_torch-cce-smoothing-ignores-axis-float64"])
def test_smoothing_over_last_axis_in_float64_composes_with_float32_arithmetic(entry) -> None:
    """keras-cce-smoothing-ignores-axis's loss (eps / d for the last axis d) computed in float32 for float64
    inputs: neither model alone explains it."""
    x = np.array([[[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]])
    t = np.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]])
    eps = 0.2
    case = make_case("edge_test_axis", "softmax_cross_entropy", x, t, kind="edge",
                     params={"axis": 1, "label_smoothing": eps, "reduction": "sum"})
    log_p = (x - np.log(np.exp(x).sum(axis=1, keepdims=True))).astype(np.float32)
    keras = np.float32(-(((1 - eps) * t + eps / 2).astype(np.float32) * log_p).sum())
    assert _verdict(entry, case, "float64", "value", np.float64(keras))["verdict"] == "known"
    for alone in ("smoothing_over_last_axis", "float32_arithmetic"):
        value, _, scale, _ = evaluate_model(alone, case.loss, cast_inputs(case, "float64"), "float64", None)
        assert not compare(np.float64(keras), value, scale, "float64", kappa(case.loss, "value")).ok
    assert _verdict(entry, case, "float64", "value", np.float64(keras * 1.001))["verdict"] == "fail"


def test_keras_probs_on_jax_halves_the_gradient_at_a_clip_bound() -> None:
    """KL's y_pred = 1 sits on jnp.clip's upper bound 1: its gradient -t / q = -1 is halved (then / N = 2 rows);
    y_pred = 0 is below the lower bound: no gradient."""
    case = make_case("edge_test_kl", "kl_divergence", [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]],
                     [[0.1, 0.6, 0.3], [1.0, 0.0, 0.0]], kind="edge", params={"reduction": "mean", "log_input": False})
    p, t = np.clip(case.first, 1e-7, 1), np.clip(case.second, 1e-7, 1)
    grad = np.where(case.first < 1e-7, 0.0, -t / p / 2)  # below the lower bound: no gradient
    grad[1, 0] /= 2
    entry, variant = "keras_jax-probabilities-clip-tie-half-gradient", "clip_probabilities_1e-7"
    assert _verdict(entry, case, "float64", "grad", grad, variant)["verdict"] == "known"
    grad[1, 0] = 0.0  # no gradient at the bound is another computation
    assert _verdict(entry, case, "float64", "grad", grad, variant)["verdict"] == "fail"


def test_keras_probs_on_torch_underflows_the_float16_backward() -> None:
    """float16, 'mean' over 64 rows: t g = 1e-6 / 64 underflows to 0 before the division by p = 1e-5, so the
    class's gradient is the normalisation's 1/64 alone (truth 1/64 - 1e-6 / (64 * 1e-5) = 0.0141)."""
    p = np.tile([[1 - 1e-5, 1e-5]], (64, 1))
    t = np.tile([[1 - 1e-6, 1e-6]], (64, 1))
    case = make_case("edge_test_cce", "categorical_cross_entropy", p, t, kind="edge", params={"reduction": "mean"})
    h = np.float16
    g = h(1) / h(64)
    p16, t16 = p.astype(h), t.astype(h)
    d_q = ((t16 * -g).astype(h) / p16).astype(h)
    grad = (d_q + (-(d_q * p16).astype(h)).sum(axis=1, keepdims=True, dtype=h)).astype(h)
    assert grad[0, 1] == h(1 / 64)
    entry, variant = "keras_torch-cce-probs-float16-backward-underflow", "normalize_then_clip_1e-7"
    assert _verdict(entry, case, "float16", "grad", grad, variant)["verdict"] == "known"
    grad[:, 1] = h(1 / 128)
    assert _verdict(entry, case, "float16", "grad", grad, variant)["verdict"] == "fail"


def test_float32_arithmetic_covers_the_weight_gradient_of_a_float64_head() -> None:
    """Keras's torch matmul computes a float64 head in float32: the weight gradient (p - onehot)^T h in float32
    is known through the float32 bound, a 1e-4 relative error is not."""
    h = np.array([[0.3, -1.2, 2.0], [1.1, 0.4, -0.7]])
    w = np.array([[0.5, 0.1, -0.3], [-0.2, 0.8, 0.6]])
    case = make_case("edge_test_lce", "linear_cross_entropy", h, np.array([0, 1]), kind="edge",
                     params={"linear_weight": w, "reduction": "sum"})
    h32, w32 = h.astype(np.float32), w.astype(np.float32)
    z = h32 @ w32.T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    grad_w = ((p - np.eye(2, dtype=np.float32)).T @ h32).astype(np.float64)
    entry, impl = "keras_torch-float64-promoted-to-float32", "SparseCategoricalCrossentropy(matmul)"
    verdict = _verdict(entry, case, "float64", "grad_linear_weight", grad_w, "all_ignored_zero", impl_name=impl)
    assert verdict["verdict"] == "known"
    off = _verdict(entry, case, "float64", "grad_linear_weight", grad_w * (1 + 1e-4), "all_ignored_zero",
                   impl_name=impl)
    assert off["verdict"] == "fail"


def test_warpctc_probability_floor_explains_paddle_ctc_on_a_large_logit_gap() -> None:
    """One frame, logits [300, 0], label 1: the truth is 300; warpctc floors p_1 at float32's smallest
    normal number, so the loss is -log(1.18e-38) = 87.3."""
    case = make_case("edge_test_ctc", "ctc", [[[300.0, 0.0]]], [[1]], kind="edge")
    entry = "paddle-ctc-probability-floor"
    floored = -np.log(np.float64(np.finfo(np.float32).tiny))
    assert _verdict(entry, case, "float32", "value", np.float32([floored]))["verdict"] == "known"
    assert _verdict(entry, case, "float32", "value", np.float32([300.0]))["verdict"] == "pass"
    assert _verdict(entry, case, "float32", "value", np.float32([50.0]))["verdict"] == "fail"


def test_clip_64_mean_over_all_samples_explains_both_paddle_mechanisms_at_once() -> None:
    """A logit gap of 100 (clipped: costs 64) and one of two labels ignored ('mean' divides by 2, not 1)."""
    x = np.array([[0.0, 100.0], [0.0, 1.0]])
    case = make_case("edge_test_both", "sparse_softmax_cross_entropy", x, [0, -100], kind="edge",
                     params={"reduction": "mean", "ignore_index": -100})
    clipped = 64 + np.log1p(np.exp(-64))
    entry = "paddle-ce-clip-64-mean-negative-ignore-index"
    assert _verdict(entry, case, "float64", "value", clipped / 2, "all_ignored_zero").get("known") == entry
    # each mechanism alone is another entry's model, not this one's; 40 is none of them
    assert _verdict(entry, case, "float64", "value", clipped, "all_ignored_zero").get("known") == "paddle-ce-clip-64"
    assert _verdict(entry, case, "float64", "value", 50.0, "all_ignored_zero").get("known") \
        == "paddle-ce-mean-negative-ignore-index"
    assert _verdict(entry, case, "float64", "value", 40.0, "all_ignored_zero")["verdict"] == "fail"


def test_class_sum_in_dtype_explains_paddle_soft_label_sum_in_order() -> None:
    """Uniform soft labels over 1000 equal logits: -sum t log p accumulated term by term in float32 drifts
    6.8x the pairwise bound; the same sum with one term dropped is not that computation."""
    x, t = np.zeros((1, 1000)), np.full((1, 1000), 1e-3)
    case = make_case("edge_test_soft", "softmax_cross_entropy", x, t, kind="edge", params={"reduction": "none"})
    terms = t.astype(np.float32) * np.log(np.full(1000, 1e-3, dtype=np.float32))
    total = np.float32(0)
    for term in terms[0]:
        total = np.float32(total + term)
    entry = "paddle-ce-soft-label-class-sum-in-order"
    assert _verdict(entry, case, "float32", "value", np.float32([-total]))["verdict"] == "known"
    assert _verdict(entry, case, "float32", "value", np.float32([-total + terms[0, 0]]))["verdict"] == "fail"


def test_mean_in_packet_lanes_explains_paddle_mean_all() -> None:
    """64,000 equal terms 0.1 summed in 8 float32 lanes (8,000 each), lanes added pairwise, divided by n."""
    x, y = np.full((64, 1000), 0.1), np.zeros((64, 1000))
    case = make_case("edge_test_mean", "mean_absolute_error", x, y, kind="edge", params={"reduction": "mean"})
    lanes = np.zeros(8, np.float32)
    for row in np.abs(x - y).astype(np.float32).reshape(-1, 8):
        lanes = (lanes + row).astype(np.float32)
    while len(lanes) > 1:
        lanes = (lanes[: len(lanes) // 2] + lanes[len(lanes) // 2:]).astype(np.float32)
    got = np.float32(lanes[0] / np.float32(64000))
    entry = "paddle-l1-mean-all-packet-lanes"
    assert _verdict(entry, case, "float32", "value", got)["verdict"] == "known"
    assert _verdict(entry, case, "float32", "value", np.float32(got * (1 + 1e-4)))["verdict"] == "fail"


def test_cosine_sums_in_order_explains_paddle_cosine_similarity() -> None:
    """1 followed by 999 terms 1e-8: each in-order float64 addition rounds 1e-8 down by 0.27 ulp(1), some 270 ulp
    in all, where a pairwise sum stays within a few ulp."""
    x1, x2 = np.array([[1.0] + [1e-8] * 999]), np.ones((1, 1000))
    case = make_case("edge_test_cos", "cosine_similarity", x1, x2, kind="edge", params={"reduction": "none"})
    w12 = w1 = w2 = 0.0
    for a, b in zip(x1[0], x2[0], strict=True):  # the three sums, in order, in float64
        w12, w1, w2 = w12 + a * b, w1 + a * a, w2 + b * b
    got = np.array([w12 / np.sqrt(max(w1 * w2, 1e-16))])
    entry, variant = "paddle-cosine-sums-in-order", "cosine_product_floor_1e-8"
    assert _verdict(entry, case, "float64", "value", got, variant)["verdict"] == "known"
    truth = _verdict(entry, case, "float64", "value", got, variant)["truth"]
    assert _verdict(entry, case, "float64", "value", truth + 2 * (got - truth), variant)["verdict"] == "fail"


def test_two_log_bce_backward_in_dtype_explains_keras_float16_gradient() -> None:
    """'mean' over 64 x 1000 in float16: g = 1/64/1000 = 1.6e-5 is already subnormal; -g (1 - z) with
    1 - z = 2e-3 rounds to a few subnormal spacings before 1 / (1 - p) = 1024 amplifies it."""
    p, z = np.full((64, 1000), 0.999), np.full((64, 1000), 0.998)
    case = make_case("edge_test_bce", "binary_cross_entropy", p, z, kind="edge", params={"reduction": "mean"})
    h = np.float16
    p16, z16, one = p.astype(h), z.astype(h), h(1)
    g = h(h(one / h(64)) / h(1000))
    d_log_p = (-g * z16).astype(h) * (one / p16).astype(h)
    d_log_q = (-g * (one - z16).astype(h)).astype(h) * (one / (one - p16).astype(h)).astype(h)
    got = (d_log_p.astype(h) - d_log_q.astype(h)).astype(h)
    entry, variant = "keras-bce-probs-float16-grad-upstream-first", "clip_probabilities_1e-7"
    assert _verdict(entry, case, "float16", "grad", got, variant)["verdict"] == "known"
    assert _verdict(entry, case, "float16", "grad", (got * 2).astype(h), variant)["verdict"] == "fail"


def _tf_cce_axis1_float32(p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras's categorical CE on probabilities along axis 1 of [N, C, D] as TensorFlow computes it in float32,
    written from its ops: S = sum p, q = p / S clipped, -sum t log q, and the gradient g_q / S plus the class sum
    of g_q (-p / S) / S with g_q = (-t) (1 / q); every class sum term by term in class order."""
    f = np.float32
    lo, hi = f(1e-7), f(1 - f(1e-7))
    p, t = p.astype(f), t.astype(f)
    value, grad = np.zeros((p.shape[0], p.shape[2]), f), np.zeros(p.shape, f)
    for i in range(p.shape[0]):
        for j in range(p.shape[2]):
            s = f(0)
            for k in range(p.shape[1]):
                s = f(s + p[i, k, j])
            loss, g_s, g_q = f(0), f(0), np.zeros(p.shape[1], f)
            for k in range(p.shape[1]):
                q = f(p[i, k, j] / s)
                loss = f(loss + f(t[i, k, j] * f(np.log(min(max(q, lo), hi)))))
                if lo <= q <= hi:
                    g_q[k] = f(f(-t[i, k, j]) * f(f(1) / q))
                g_s = f(g_s + f(g_q[k] * f(f(-p[i, k, j] / s) / s)))
            value[i, j] = -loss
            grad[i, :, j] = [f(f(g / s) + g_s) for g in g_q]
    return value, grad


def test_class_sums_in_order_explains_tensorflow_keras_cce_along_axis_1() -> None:
    """1000 classes on axis 1: the class sums accumulated term by term in float32 drift 6.8x (loss) and 3.1x
    (gradient) the pairwise bound; 3e-5 more is not that computation, and on a last class axis (which
    TensorFlow reduces vectorised) the same numbers are not explained."""
    c = 1000
    p = np.stack([np.full(c, 1e-3), np.arange(1, c + 1) / (c * (c + 1) / 2)], axis=-1)[None]
    t = np.full((1, c, 2), 1e-3)
    case = make_case("edge_test_cce_axis1", "categorical_cross_entropy", p, t, kind="edge",
                     params={"reduction": "none", "axis": 1})
    last = make_case("edge_test_cce_last", "categorical_cross_entropy", np.moveaxis(p, 1, -1), np.moveaxis(t, 1, -1),
                     kind="edge")
    value, grad = _tf_cce_axis1_float32(p, t)
    entry, variant = "keras-tf-cce-probs-class-sums-in-order", "normalize_then_clip_1e-7"
    for quantity, got, moved in (("value", value, value), ("grad", grad, np.moveaxis(grad, 1, -1))):
        assert _verdict(entry, case, "float32", quantity, got, variant)["verdict"] == "known"
        assert _verdict(entry, case, "float32", quantity, got * np.float32(1 + 3e-5), variant)["verdict"] == "fail"
        assert _verdict(entry, last, "float32", quantity, moved, variant)["verdict"] == "fail"


def test_ctc_log_zero_floor_explains_tensorflow_on_an_improbable_target() -> None:
    """One frame, logits [800, 0], label 1: the truth is 800, but TF's blank state may end at log(1e-307), so
    the loss is -log(e^-800 + 1e-307) = 706.89 and the posterior sits on the blank: gradient [0, 0] for the
    truth's [1, -1] (TensorFlow 2.21 returns 706.8936 and [1.1e-6, 0])."""
    case = make_case("edge_test_ctc", "ctc", [[[800.0, 0.0]]], [[1]], kind="edge")
    floor = np.float64(np.float32(np.log(1e-307)))
    entry = "tf-ctc-log-zero-floor"
    assert _verdict(entry, case, "float32", "value", np.float32([-np.logaddexp(-800.0, floor)]))["verdict"] \
        == "known"
    assert _verdict(entry, case, "float32", "value", np.float32([750.0]))["verdict"] == "fail"
    assert _verdict(entry, case, "float32", "grad", np.float32([[[1.1e-6, 0.0]]]))["verdict"] == "known"
    assert _verdict(entry, case, "float32", "grad", np.float32([[[0.5, -0.5]]]))["verdict"] == "fail"


@pytest.mark.parametrize(("reduction", "d"), [("sum", 1), ("mean", 2)])
def test_ctc_log_zero_floor_reduces_the_sequences_like_keras(reduction: str, d: int) -> None:
    """keras.losses.CTC reduces tf.nn.ctc_loss's per-sequence losses: two sequences of the one-frame case above
    sum to 2 x 706.89 (mean: 706.89, gradient halved); the unreduced per-sequence floor is not that."""
    case = make_case("edge_test_ctc2", "ctc", [[[800.0, 0.0]], [[800.0, 0.0]]], [[1], [1]], kind="edge",
                     params={"reduction": reduction})
    floored = -np.logaddexp(-800.0, np.float64(np.float32(np.log(1e-307))))
    entry = "keras-ctc-log-zero-floor"
    assert _verdict(entry, case, "float32", "value", np.float32(2 * floored / d))["verdict"] == "known"
    assert _verdict(entry, case, "float32", "value", np.float32(2 * floored / d + 1))["verdict"] == "fail"
    grad = np.float32([[[1.1e-6 / d, 0.0]]] * 2)
    assert _verdict(entry, case, "float32", "grad", grad)["verdict"] == "known"
    assert _verdict(entry, case, "float32", "grad", grad + np.float32([0.5 / d, -0.5 / d]))["verdict"] == "fail"


def test_reduction_in_order_explains_an_xla_sum_added_one_term_at_a_time() -> None:
    """Hinge terms of ~1 over [64, 1000], 'sum': added in order with one float32 accumulator (XLA's CPU reduce)
    they drift past the pairwise bound; that sum is known, numpy's pairwise float32 sum passes, and a result as
    far on the other side of the truth fails."""
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-1.0, 1.0, (64, 1000)), -np.ones((64, 1000))  # every term 1 + x, in (0, 2)
    case = make_case("edge_test_hinge_sum", "hinge", x, y, kind="edge", params={"reduction": "sum"})
    terms = np.maximum(1 - y.astype(np.float32) * x.astype(np.float32), np.float32(0))
    in_order = np.cumsum(terms.ravel(), dtype=np.float32)[-1]
    truth = float(np.sum(np.maximum(1 - y * x, 0.0)))
    entry = "tf-xla-reduction-in-order"
    assert _verdict(entry, case, "float32", "value", in_order, impl_name="Hinge")["verdict"] == "known"
    pairwise = np.sum(terms, dtype=np.float32)
    assert _verdict(entry, case, "float32", "value", pairwise, impl_name="Hinge")["verdict"] == "pass"
    mirrored = np.float32(2 * truth - float(in_order))
    assert _verdict(entry, case, "float32", "value", mirrored, impl_name="Hinge")["verdict"] == "fail"


def test_difference_condition_looks_at_the_difference_rounded_to_the_dtype() -> None:
    """255.95 - 0 rounds to 256 in float16, whose square overflows (the true square 65510 does not)."""
    def holds(d: float) -> bool:
        case = make_case("edge_test_d", "mean_squared_error", [[d]], [[0.0]], kind="edge")
        return "difference_above_sqrt_max" in input_facts(cast_inputs(case, "float16"), "float16", case.loss)
    assert holds(255.95) and not holds(255.9)


def test_smoothing_overflow_uses_the_logits_of_the_linear_cross_entropy() -> None:
    """h W^T spreads the classes 600 apart: the smoothing term overflows float16 though h itself is small."""
    w = np.linspace(-300, 300, 1000)[:, None]
    case = make_case("edge_test_lce", "linear_cross_entropy", [[1.0]], [0], kind="edge",
                     params={"linear_weight": w, "label_smoothing": 0.1, "reduction": "sum"})
    assert "smoothing_sum_overflows" in input_facts(cast_inputs(case, "float16"), "float16", case.loss)
    small = make_case("edge_test_lce", "linear_cross_entropy", [[1.0]], [0], kind="edge",
                      params={"linear_weight": w / 100, "label_smoothing": 0.1, "reduction": "sum"})
    assert "smoothing_sum_overflows" not in input_facts(cast_inputs(small, "float16"), "float16", small.loss)


def test_class_sum_in_order_explains_torch_class_axis_1_smoothing_gradient() -> None:
    """Classes on axis 1 of [1, 1000, 1], equal logits, smoothing 0.2: g = -t' (-0.8002 at the label, -2e-4
    elsewhere) summed class by class in float32 drifts 2.6e-5 from -1, so each gradient p - t' is off by p times
    that, 2x the bound; the same gradient with the drift doubled is not that computation."""
    c, eps = 1000, 0.2
    case = make_case("edge_test_ce3d", "sparse_softmax_cross_entropy", np.zeros((1, c, 1)), np.zeros((1, 1), int),
                     kind="edge", params={"reduction": "none", "label_smoothing": eps, "axis": 1})
    g = np.full(c, -eps / c)
    g[0] -= 1 - eps
    g = g.astype(np.float32)
    total = np.float32(0)
    for term in g:
        total = np.float32(total + term)
    torch_like = (g - np.float64(total) / c).astype(np.float32).reshape(1, c, 1)
    doubled = (g - (2 * np.float64(total) + 1) / c).astype(np.float32).reshape(1, c, 1)
    entry = "torch-ce-class-axis-1-grad-class-sum-in-order"
    assert _verdict(entry, case, "float32", "grad", torch_like)["verdict"] == "known"
    assert _verdict(entry, case, "float32", "grad", doubled)["verdict"] == "fail"
    # a 2-D input takes torch's last-axis kernel, which the model leaves to the reference
    flat = make_case("edge_test_ce2d", "sparse_softmax_cross_entropy", np.zeros((1, c)), np.zeros(1, int),
                     kind="edge", params={"reduction": "none", "label_smoothing": eps, "axis": 1})
    assert _verdict(entry, flat, "float32", "grad", torch_like.reshape(1, c))["verdict"] == "fail"


def test_cosine_backward_in_dtype_explains_torch_float16_subnormal_gradient() -> None:
    """|x| ~ 4.5e4 in float16: (x / n) / n and both parts of the gradient b / n - c x / (n |x|) lie below float16's
    smallest normal number, so autograd's op-by-op gradient cancels to the wrong subnormal spacing."""
    rng = np.random.default_rng(2)
    x = rng.normal(1000, 1000, (1, 1000))
    y = x + rng.normal(0, 30, (1, 1000))
    case = make_case("edge_test_cos", "cosine_similarity", x, y, kind="edge", params={"axis": 1})
    h = np.float16
    x16, y16 = x.astype(h), y.astype(h)
    nx = np.sqrt(np.sum(x16.astype(np.float64) ** 2, axis=1, keepdims=True)).astype(h)
    ny = np.sqrt(np.sum(y16.astype(np.float64) ** 2, axis=1, keepdims=True)).astype(h)
    b = y16 / ny
    part = (np.sum((-b * ((x16 / nx) / nx)).astype(np.float64), axis=1, keepdims=True)).astype(h)
    torch_like = b / nx + part * (x16 / nx)
    entry, variant = "torch-cosine-float16-grad-subnormal-intermediates", "cosine_norm_floor_1e-8"
    assert _verdict(entry, case, "float16", "grad", torch_like, variant)["verdict"] == "known"
    assert _verdict(entry, case, "float16", "grad", b / nx, variant)["verdict"] == "fail"


def test_warpctc_zero_log_sentinel_explains_paddle_gradient_one_on_a_certain_path() -> None:
    """One frame, logits [0, 100], label 1: p(1) rounds to 1 in float32, so alpha + beta of the label state is
    log 1 + log 1 = 0.0 exactly and warpctc, reading 0.0 as 'no path', returns p = 1 where p - posterior is 0;
    the blank has no path (-inf) and keeps p, floored at 1.2e-38."""
    case = make_case("edge_test_ctc", "ctc", [[[0.0, 100.0]]], [[1]], kind="edge")
    tiny = np.finfo(np.float32).tiny
    entry, variant = "paddle-ctc-zero-log-posterior-grad", "ctc_mean_over_target_lengths"
    assert _verdict(entry, case, "float32", "grad", np.float32([[[tiny, 1.0]]]), variant)["verdict"] == "known"
    assert _verdict(entry, case, "float32", "grad", np.float32([[[tiny, 0.5]]]), variant)["verdict"] == "fail"


def test_every_model_is_tested_and_used() -> None:
    tested = {"clip_64", "bce_backward_eps", "bce_backward_eps_float32", "mean_over_all_samples",
              "smoothing_over_last_axis", "computed_in_float32", "float32_arithmetic", "keras_focal_on_jax",
              "warpctc_probability_floor", "clip_64_mean_over_all_samples", "class_sum_in_dtype",
              "mean_in_packet_lanes", "two_log_bce_backward_in_dtype", "ctc_log_zero_floor",
              "cosine_sums_in_order", "class_sums_in_order", "log_softmax_backward_class_sum_in_order",
              "cosine_backward_in_dtype", "warpctc_zero_log_sentinel", "keras_focal_on_torch",
              "keras_bce_on_torch", "keras_focal_on_jax+float32_arithmetic", "keras_focal_on_torch+float32_arithmetic",
              "smoothing_over_last_axis+float32_arithmetic", "keras_probs_on_jax", "keras_probs_on_torch",
              "keras_bce_on_torch_compiled", "keras_focal_on_torch_compiled", "reduction_in_order"}
    assert tested == set(MODELS)
    assert {k.model for k in KNOWN.values() if k.model} == set(MODELS)


def test_condition_entry_needs_its_condition() -> None:
    """torch's float16 MSE overflow is known only where some |x - y| squares past 65504."""
    over = make_case("edge_test_mse", "mean_squared_error", [300.0, 1.0], [0.0, 1.0], kind="edge",
                     params={"reduction": "mean"})
    under = make_case("edge_test_mse", "mean_squared_error", [200.0, 1.0], [0.0, 1.0], kind="edge",
                      params={"reduction": "mean"})
    assert _verdict("torch-mse-float16-square-overflow", over, "float16", "value", np.float16(np.inf))["verdict"] \
        == "known"
    assert _verdict("torch-mse-float16-square-overflow", under, "float16", "value", np.float16(np.inf))["verdict"] \
        == "fail"


def test_a_flushed_subnormal_does_not_hide_a_marginal_shortfall() -> None:
    """TensorFlow flushes float32 subnormals (a declared variant) and its logistic is 4 ulp off near 0.43: the
    fail is judged with flush allowed, so it is the 4-ulp shortfall, and 'marginal' holds; without the flush
    the flushed 1e-38 is the worst element (ratio 6e4) and nothing explains it."""
    x = np.array([-87.5, -0.28])
    case = make_case("edge_test_ftz", "sigmoid", x, kind="edge")
    truth = (1 / (1 + np.exp(-x.astype(np.float32).astype(np.float64)))).astype(np.float32)
    got = np.array([0.0, np.float32(truth[1]) + 4 * np.spacing(truth[1])], dtype=np.float32)
    impl = {"name": "sigmoid", "api": "tf.math.sigmoid", "variant": None}
    verdicts = {}
    for flush in (True, False):
        record = base_record(case, "tensorflow", impl, "float32", "value", mode="eager")
        judge(record, case, impl, "float32", got, Truths(), flush)
        verdicts[flush] = apply_known(record, case, list(KNOWN.values()), VERSION["tensorflow"])
    assert verdicts[True]["verdict"] == "known" and verdicts[True]["known"] == "tf-sigmoid-float32-4-ulp"
    assert verdicts[True]["ratio"] < 2
    assert verdicts[False]["verdict"] == "fail"
