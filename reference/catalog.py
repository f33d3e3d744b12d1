"""The catalog: one declaration per loss id.

Everything else in lossconf (reference, cases, adapters, report columns) reads this module. Adding a
loss means adding a `Loss` here, its formula to `lossconf.reference.numpy_ref`, and a row to each
adapter's table.

Conventions shared by every loss:
- ``first`` is the differentiated input (logits, probabilities or predictions), ``second`` the
  labels or targets; the class axis is the last one unless the ``axis`` parameter says otherwise.
- ``reduction="none"`` returns one value per sample (per element for elementwise losses),
  ``"mean"`` and ``"sum"`` reduce those to a scalar.
- The gradient is always d(sum of the returned values)/d(first); a loss that declares several
  ``differentiable`` inputs (``linear_cross_entropy``: the hidden states and the projection weight,
  which travels as the float array parameter ``linear_weight``) has one gradient per input, checked as
  its own quantity: "grad" for the first input, "grad_<param name>" for the others.
- Non-finite inputs follow the mathematical limit: ``0 * log(0) = 0`` for a zero target, a ``-inf``
  logit with zero target weight contributes 0, a NaN anywhere in a sample makes that sample NaN.
  Where a sample's value is NaN (also every logit ``-inf``: softmax is 0/0 there) the function is
  undefined, so that sample's gradient is NaN too.

A *variant* is a documented convention that differs from the canonical formula. It is expressed as
overrides of hidden reference parameters (``Variant.overrides``) so that the reference computes it
exactly, and it carries a citation to the documentation that defines it.
"""

from __future__ import annotations

from dataclasses import dataclass

REDUCTIONS = ("none", "mean", "sum")


@dataclass(frozen=True)
class Input:
    """One array input of a loss: its name, its role and the values it may take."""

    name: str
    role: str  # "logits" | "probabilities" | "log_probabilities" | "predictions" | "hidden" | "labels" | "targets"
    # | "label_sequences" (int [N, S]: one padded label sequence per sample)
    domain: str  # human-readable value domain, also used in error messages


@dataclass(frozen=True)
class Param:
    """A user-visible parameter of a loss, with its default and domain."""

    name: str
    default: object
    domain: str


@dataclass(frozen=True)
class Variant:
    """A documented convention that differs from the canonical semantics."""

    name: str
    description: str
    overrides: dict  # hidden reference parameters that reproduce the variant
    citation: str  # documentation that defines it


@dataclass(frozen=True)
class Loss:
    """Declaration of one loss id: inputs, parameters, formulas, error-model scale, variants."""

    id: str
    inputs: tuple[Input, ...]
    params: tuple[Param, ...]
    formula: str
    gradient: str
    scale: str  # S(x) of the error model, see lossconf.errormodel
    variants: tuple[str, ...] = ()
    reductions: tuple[str, ...] = REDUCTIONS
    elementwise: bool = False  # "none" keeps the input's shape (otherwise one value per sample)
    classes_axis: bool = True  # has a class axis (softmax family, categorical losses)
    # inputs with a gradient: the first input's name, then float array params (default: the first only)
    differentiable: tuple[str, ...] = ()
    sequence: bool = False  # first is [N, T, C] frames: one value per sequence (axis 0), not per frame

    def param(self, name: str) -> Param:
        """The declared parameter ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def has_second(self) -> bool:
        return len(self.inputs) > 1

    @property
    def grad_params(self) -> tuple[str, ...]:
        """The float array params that are differentiated besides the first input."""
        return self.differentiable[1:]

    @property
    def quantities(self) -> tuple[str, ...]:
        """Checked quantities: "value", "grad" (first input), "grad_<param>" per differentiable param."""
        return ("value", "grad", *(f"grad_{p}" for p in self.grad_params))


_TORCH = "https://pytorch.org/docs/stable/generated/"
_KERAS = "https://keras.io/api/losses/probabilistic_losses/"
_OPTAX = "https://optax.readthedocs.io/en/latest/api/losses.html"
_PADDLE = "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/"

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "smoothing_over_c_minus_1",
            "label smoothing keeps 1-eps on the true class and spreads eps over the C-1 others: "
            "t = (1-eps) y + eps/(C-1) (1-y), instead of (1-eps) y + eps/C",
            {"smoothing_denominator": "C-1"},
            "https://github.com/facebookresearch/fairseq/blob/main/fairseq/criterions/"
            "label_smoothed_cross_entropy.py (eps_i = epsilon / (lprobs.size(-1) - 1))",
        ),
        Variant(
            "clip_probabilities_1e-7",
            "probabilities are clipped to [lo, hi] before the log, lo = fl_d(1e-7) and hi = fl_d(1 - lo) "
            "computed in the input's dtype d as Keras does (keras.config.epsilon() converted to the tensor's "
            "dtype): float32 [1.0000000117e-7, 0.99999988]; float16 and bfloat16 hi = 1, so p = 1 is not "
            "clipped; kl_divergence clips both inputs to [lo, 1]",
            {"clip": 1e-7},
            _KERAS + " (Keras clips y_pred to [epsilon, 1-epsilon], epsilon = keras.config.epsilon() = 1e-7)",
        ),
        Variant(
            "normalize_then_clip_1e-7",
            "probabilities are first divided by their sum over the class axis, then clipped to "
            "[lo, hi] with the bounds of clip_probabilities_1e-7 (lo = fl_d(1e-7), hi = fl_d(1 - lo) in the "
            "input's dtype d); the gradient therefore carries an extra sum(t)/sum(p) term",
            {"normalize": True, "clip": 1e-7},
            _KERAS + "#categoricalcrossentropy-class (keras.ops.categorical_crossentropy: "
            "output = output / sum(output, axis); output = clip(output, epsilon, 1-epsilon))",
        ),
        Variant(
            "clip_and_offset_1e-7",
            "probabilities are clipped to [lo, hi] and lo is added again inside each log: "
            "-[z log(p' + lo) + (1-z) log(1 - p' + lo)], lo = fl_d(1e-7) and hi = fl_d(1 - lo) in the input's "
            "dtype d (tf.keras / tf_keras 2.x; Keras 3 only clips)",
            {"clip": 1e-7, "log_offset": 1e-7},
            "https://github.com/keras-team/tf-keras/blob/master/tf_keras/backend.py (binary_crossentropy: "
            "output = tf.clip_by_value(output, epsilon_, 1.0 - epsilon_); bce = target * tf.math.log(output + "
            "epsilon()); bce += (1 - target) * tf.math.log(1 - output + epsilon()))",
        ),
        Variant(
            "log_clamp_-100",
            "each log term is clamped to >= -100, so a probability of exactly 0 or 1 gives a finite "
            "loss of at most 100",
            {"log_min": -100.0},
            _TORCH + "torch.nn.BCELoss.html (\"BCELoss clamps its log function outputs to be greater "
            "than or equal to -100\")",
        ),
        Variant(
            "mean_over_count",
            "reduction='mean' with class weights divides by the number of kept targets instead of "
            "the sum of their weights",
            {"mean_denominator": "count"},
            "https://www.tensorflow.org/api_docs/python/tf/keras/losses/Reduction "
            "(SUM_OVER_BATCH_SIZE: weighted sum divided by the number of elements)",
        ),
        Variant(
            "all_ignored_zero",
            "reduction='mean' when every target is ignored returns 0 instead of NaN (0/0)",
            {"all_ignored": "zero"},
            _PADDLE + "cross_entropy_cn.html (mean over non-ignored labels; returns 0 when none)",
        ),
        Variant(
            "flush_subnormals",
            "results and intermediates below the dtype's smallest normal number may be flushed to zero "
            "(FTZ/DAZ arithmetic): an absolute error up to the smallest normal number is allowed; declared "
            "per adapter, it applies to every loss",
            {},
            "https://github.com/jax-ml/jax/issues/16200 (XLA on CPU flushes denormals to zero; "
            "'working as intended')",
        ),
        # scikit-learn's log_loss clips to [eps, 1 - eps] with eps = np.finfo(y_proba.dtype).eps: one
        # variant per dtype, since the clip bound is a dtype's machine epsilon
        *(
            Variant(
                f"clip_probabilities_eps_{dtype}",
                f"probabilities are clipped to [eps, 1 - eps] before the log, eps = np.finfo({dtype}).eps = "
                f"2^-{bits} (scikit-learn's log_loss; rows are not renormalised)",
                {"clip": 2.0**-bits},
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.log_loss.html (\"y_proba values "
                "are clipped to [eps, 1-eps] where eps is the machine precision for y_proba's dtype\")",
            )
            for dtype, bits in (("float16", 10), ("float32", 23), ("float64", 52))
        ),
        Variant(
            "ieee_inf_propagation",
            "IEEE 754 arithmetic on +-inf inputs: an element of the result that depends on a +-inf input may be NaN "
            "instead of its mathematical limit (finite or infinite), because inf - inf, 0 * inf and inf / inf are "
            "NaN (e.g. softmax(x - max x) at a +inf logit, 0 * log(0) at a -inf logit under a zero target); every "
            "other element must still be within the bound; applies to every implementation without declaring it",
            {},
            "https://docs.jax.dev/en/latest/_autosummary/jax.nn.softmax.html (JAX: 'If any input values are +inf, "
            "the result will be all NaN', jax#21495/#21501); PyTorch: https://github.com/pytorch/pytorch/issues/6864 "
            "(softmax/log_softmax NaN at one +inf, closed: the limit holds 'in the limit sense only'); TensorFlow: "
            "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/core/kernels/softmax_op_functor.h "
            "(shifted_logits = logits - max(logits)) and https://github.com/tensorflow/tensorflow/issues/75256; "
            "Paddle: https://github.com/PaddlePaddle/Paddle/blob/develop/paddle/phi/kernels/funcs/softmax_impl.h "
            "(x - max(x) before exp)",
        ),
        Variant(
            "kink_gradient_half",
            "at a kink of max(a, b) (a == b exactly: the hinge at its margin) the gradient is split evenly, "
            "half to each argument, instead of the canonical 0 of the flat side",
            {"kink": 0.5},
            "https://github.com/jax-ml/jax/blob/main/jax/_src/lax/lax.py (max_p JVP: _balanced_eq gives "
            "each argument 0.5 where x == y); optax.losses.hinge_loss is jnp.maximum(0, 1 - x t)",
        ),
        Variant(
            "kink_gradient_full",
            "at a kink of max(a, b) (a == b exactly: the hinge at its margin) the whole gradient goes to the "
            "first argument, so the hinge at its margin has the slope of its active side",
            {"kink": 1.0},
            "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/python/ops/math_grad.py "
            "(_MaximumGrad: xmask = math_ops.greater_equal(x, y)); keras.losses.hinge is "
            "ops.maximum(1 - y_true * y_pred, 0)",
        ),
        Variant(
            "poisson_log_offset_1e-8",
            "log_input=False: the log of the rate is taken as log(x + o), o = fl_d(1e-8) in the input's dtype "
            "(0 in float16, where 1e-8 rounds to 0); log_input=True is unaffected",
            {"log_offset": 1e-8},
            _TORCH + "torch.nn.PoissonNLLLoss.html (\"input - target * log(input + eps)\", eps = 1e-8)",
        ),
        Variant(
            "poisson_log_offset_1e-7",
            "log_input=False: the log of the rate is taken as log(x + o), o = fl_d(1e-7) in the input's dtype "
            "(keras.config.epsilon())",
            {"log_offset": 1e-7},
            "https://keras.io/api/losses/regression_losses/#poisson-function (keras.losses.poisson: "
            "y_pred - y_true * log(y_pred + epsilon))",
        ),
        Variant(
            "cosine_norm_floor_1e-8",
            "each norm is floored: x . y / (max(|x|, e) max(|y|, e)), e = fl_d(1e-8) in the input's dtype (0 in "
            "float16); a zero vector gives 0 and the gradient y / (e |y|)",
            {"norm_floor": 1e-8},
            _TORCH + "torch.nn.functional.cosine_similarity.html (similarity = x1 . x2 / (max(||x1||, eps) "
            "max(||x2||, eps)), eps = 1e-8)",
        ),
        Variant(
            "cosine_product_floor_1e-8",
            "the product of the norms is floored: x . y / sqrt(max(|x|^2 |y|^2, e^2)), e = fl_d(1e-8)",
            {"norm_floor": 1e-8, "floor_product": True},
            _PADDLE + "cosine_similarity_en.html (paddle/nn/functional/common.py: n12 = sqrt(clip(w1 * w2, "
            "min=eps * eps)); cos_sim = w12 / n12)",
        ),
        Variant(
            "negated_cosine_norm_floor_1e-7",
            "the loss is minus the cosine, each vector normalised as x min(1 / |x|, 1 / e), e = fl_d(1e-7) "
            "(keras.config.epsilon())",
            {"norm_floor": 1e-7, "sign": -1.0},
            "https://keras.io/api/losses/regression_losses/#cosinesimilarity-class (loss = -sum(l2_norm(y_true) "
            "* l2_norm(y_pred)); keras.ops.normalize: x * minimum(rsqrt(sum(x^2)), 1 / epsilon))",
        ),
        Variant(
            "cosine_distance",
            "one minus the cosine: 1 - x . y / (|x| |y|)",
            {"sign": -1.0, "offset": 1.0},
            _OPTAX + "#optax.losses.cosine_distance (\"1 - cosine_similarity\")",
        ),
        Variant(
            "ctc_mean_over_target_lengths",
            "reduction='mean' divides each sequence's loss by its target length (clamped to >= 1) before averaging "
            "over the batch: mean = (1/N) sum_i l_i / max(L_i, 1); 'none' and 'sum' are unaffected",
            {"mean_per_target_length": True},
            _TORCH + "torch.nn.CTCLoss.html (\"'mean': the output losses will be divided by the target lengths and "
            "then the mean over the batch is taken\"); paddle: " + _PADDLE + "ctc_loss_en.html (\"If reduction is "
            "'mean', the output loss will be divided by the label_lengths, and then return the mean of quotient\")",
        ),
        Variant(
            "half_squared_error",
            "squared error halved: 0.5 (x - y)^2",
            {"factor": 0.5},
            _OPTAX + "#optax.losses.l2_loss (\"Calculates the L2 loss ... 0.5 * squared_error\")",
        ),
    )
}

_LOGITS = Input("logits", "logits", "real numbers (NaN and +-inf allowed), class axis last")
_PROBS = Input("probabilities", "probabilities", "values in [0, 1]")
_TARGET_DIST = Input("targets", "targets", "class probabilities (soft labels), any real weights allowed")
_LABELS = Input("labels", "labels", "integer class indices in [0, C) or ignore_index")
_TARGETS01 = Input("targets", "targets", "values in [0, 1]")
_PRED = Input("predictions", "predictions", "real numbers")
_REAL_TARGET = Input("targets", "targets", "real numbers, broadcastable to predictions")

_RED = Param("reduction", "none", "'none' | 'mean' | 'sum'")
_EPS = Param("label_smoothing", 0.0, "float in [0, 1]")
_AXIS = Param("axis", -1, "integer class axis")
_WEIGHT = Param("weight", None, "None or non-negative float array of shape [C]")
_IGNORE = Param("ignore_index", None, "None or an integer label value that is skipped")
_POS_W = Param("pos_weight", None, "None or non-negative float array broadcastable to the class axis")
_LOG_INPUT = Param("log_input", True, "bool: first holds log-probabilities (True) or probabilities")

_DELTA = Param("delta", 1.0, "positive float: where the quadratic part ends")
_BETA = Param("beta", 1.0, "float >= 0: where the quadratic part ends (0: the absolute error)")
_FULL = Param("full", False, "bool: add the Stirling term y log y - y + log(2 pi y) / 2 where y > 1")
_ALPHA = Param("alpha", None, "None (no weighting) or a float in [0, 1]: weight alpha on z, 1 - alpha on 1 - z")
_GAMMA = Param("gamma", 2.0, "float >= 0: focusing exponent")
_BLANK = Param("blank", 0, "integer class index of the blank in [0, C): 0 or C - 1 in practice")
_INPUT_LENGTHS = Param("input_lengths", None, "None (every sequence has all T frames) or int array [N], 0 <= T_i <= T")
_TARGET_LENGTHS = Param("target_lengths", None, "None (every target has all S labels) or int array [N], 0 <= L_i <= S")
_ZERO_INF = Param("zero_infinity", False, "bool: a sequence with no alignment (p = 0) gives 0 and gradient 0 "
                  "instead of +inf")
_SIGNS = Input("targets", "targets", "-1 or 1 (any real allowed)")
_COUNTS = Input("targets", "targets", "non-negative counts (any real >= 0 allowed)")

# How every scale below is reduced (lossconf.reference.drivers._reduce).
_RED_SCALE = (
    "; mean/sum: (1 + log2 n) * sum of the per-sample (per-element) scales / the mean's denominator "
    "(1 for sum); gradient scales are divided by that denominator"
)
_CE_SCALE = (
    "per sample: (1 + log2 C) sum_c |w_c t'_c| (1 + |x_c| + |lse(x)|), t' the smoothed target; "
    "gradient: (1 + log2 C) (sum_c |w_c t'_c| softmax(x) + |w t'|) (1 + |x| + |lse(x)|); "
    "non-finite x and lse count as 0, rows with +inf logits use x - max" + _RED_SCALE
)

CATALOG: dict[str, Loss] = {
    loss.id: loss
    for loss in (
        Loss(
            "softmax_cross_entropy",
            (_LOGITS, _TARGET_DIST),
            (_RED, _EPS, _WEIGHT, _AXIS),
            "l_i = -sum_c w_c t_ic log_softmax(x_i)_c, t = (1-eps) y + eps/C; "
            "mean = sum_i l_i / N",
            "d l_i/d x_i = (sum_c w_c t_ic) softmax(x_i) - w * t_i  (= softmax(x) - t without weights)",
            _CE_SCALE,
            variants=("smoothing_over_c_minus_1",),
        ),
        Loss(
            "sparse_softmax_cross_entropy",
            (_LOGITS, _LABELS),
            (_RED, _EPS, _WEIGHT, _IGNORE, _AXIS),
            "l_i = -sum_c w_c t_ic log_softmax(x_i)_c with t = (1-eps) onehot(y_i) + eps/C, "
            "l_i = 0 for ignored i; mean = sum_i l_i / sum_{kept i} w_{y_i}",
            "d l_i/d x_i = (sum_c w_c t_ic) softmax(x_i) - w * t_i; 0 for ignored samples",
            _CE_SCALE,
            variants=("smoothing_over_c_minus_1", "mean_over_count", "all_ignored_zero"),
        ),
        Loss(
            "sigmoid_cross_entropy",
            (_LOGITS, _TARGETS01),
            (_RED, _EPS, _POS_W),
            "l = pw z softplus(-x) + (1-z) softplus(x) with z = (1-eps) z + eps/2 "
            "(= max(x,0) - x z + log1p(exp(-|x|)) when pw = 1)",
            "dl/dx = (1-z) sigmoid(x) - pw z sigmoid(-x)  (= sigmoid(x) - z when pw = 1)",
            "value: (1 + |z'| + pw |z'|) (|x| + log1p(exp(-|x|))), z' the smoothed target, +-inf x "
            "counts as 0; gradient: 1 + (1 + pw) |z'| + (|1 - z'| sigmoid(x) + pw |z'| sigmoid(-x)) |x| "
            "(sigmoid computed as exp(x - logaddexp(x, 0)) is off by about u |x| relatively)" + _RED_SCALE,
            variants=(),
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "binary_cross_entropy",
            (_PROBS, _TARGETS01),
            (_RED,),
            "l = -[z log p + (1-z) log(1-p)]",
            "dl/dp = (p - z) / (p (1 - p))",
            "value: |z| (|log(p' + o)| + [o != 0]) + |1-z| (|log(1 - p' + o)| + 1), p' clipped/clamped and o "
            "the log offset (0 unless the variant adds one); each +1 allows for the rounding of a log's argument "
            "(1 - p', and p' + o when o != 0; p' itself is exact); gradient: |z|/(p + o) + |1-z|/(1 - p + o), "
            "each term 0 where its coefficient is 0 or the variant cuts" + _RED_SCALE,
            variants=("clip_probabilities_1e-7", "clip_and_offset_1e-7", "log_clamp_-100"),
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "categorical_cross_entropy",
            (_PROBS, _TARGET_DIST),
            (_RED, _AXIS),
            "l_i = -sum_c t_ic log p_ic",
            "dl/dp = -t / p",
            "value: (1 + log2 C) sum_c |t_c| (|log q_c| + 1), q = p normalised/clipped as the variant "
            "says; gradient: |t| / q (0 where clipped), with normalisation (1 + log2 C) (that + sum of |t| "
            "over the unclipped classes) / sum(p) (sum(p) and autodiff's sum over classes both round)"
            + _RED_SCALE,
            variants=("clip_probabilities_1e-7", "normalize_then_clip_1e-7", "clip_probabilities_eps_float16",
                      "clip_probabilities_eps_float32", "clip_probabilities_eps_float64"),
        ),
        Loss(
            "mean_squared_error",
            (_PRED, _REAL_TARGET),
            (_RED,),
            "l = (x - y)^2 elementwise; mean over all elements",
            "dl/dx = 2 (x - y)",
            "value: factor (x - y)^2 (the value itself); gradient: 2 factor |x - y|" + _RED_SCALE,
            variants=("half_squared_error",),
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "mean_absolute_error",
            (_PRED, _REAL_TARGET),
            (_RED,),
            "l = |x - y| elementwise; mean over all elements",
            "dl/dx = sign(x - y) (0 at x = y)",
            "value: |x - y|; gradient: 1" + _RED_SCALE,
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "root_mean_squared_error",
            (_PRED, _REAL_TARGET),
            (Param("reduction", "mean", "'mean'"),),
            "l = sqrt(mean((x - y)^2)) over all elements",
            "dl/dx = (x - y) / (n l)",
            "value: (1 + log2 n) l; gradient: (1 + log2 n) |x - y| / (n l)",
            reductions=("mean",),
            classes_axis=False,
        ),
        Loss(
            "kl_divergence",
            (Input("predictions", "log_probabilities", "log q (or q when log_input=False)"), _TARGET_DIST),
            (_RED, _LOG_INPUT, _AXIS),
            "l_i = sum_c p_ic (log p_ic - log q_ic), 0 log 0 = 0",
            "dl/d(log q) = -p ; dl/dq = -p / q",
            "value: (1 + log2 C) sum_c |p_c| (|log p_c| + |log q_c| + [not log_input]), the +1 for log(p / q) "
            "whose argument is rounded (Keras); gradient: |p| (log_input) or |p| / q (0 where clipped)" + _RED_SCALE,
            variants=("clip_probabilities_1e-7",),
        ),
        Loss(
            "smooth_labels",
            (Input("labels", "targets", "one-hot or soft labels, class axis last"),),
            (Param("reduction", "none", "'none'"), _EPS),
            "s = (1 - eps) y + eps / C",
            "ds/dy = (1 - eps) elementwise",
            "value: |s| + eps; gradient: 1",
            variants=("smoothing_over_c_minus_1",),
            reductions=("none",),
            elementwise=True,
        ),
        Loss(
            "softmax",
            (_LOGITS,),
            (Param("reduction", "none", "'none'"), _AXIS),
            "s_c = exp(x_c - lse(x))",
            "d(sum_c s_c)/dx = 0 (softmax sums to one); NaN in a row whose value is NaN (a NaN logit, or "
            "every logit -inf: 0/0)",
            "value and gradient: (1 + log2 C) s (1 + |x| + |lse(x)|)",
            reductions=("none",),
            elementwise=True,
        ),
        Loss(
            "log_softmax",
            (_LOGITS,),
            (Param("reduction", "none", "'none'"), _AXIS),
            "l_c = x_c - lse(x)",
            "d(sum_c l_c)/dx = 1 - C softmax(x)",
            "value: (1 + log2 C) (1 + |x_c| + |lse(x)|); gradient: 1 + (1 + log2 C) C softmax(x) "
            "(1 + |x| + |lse(x)|)",
            reductions=("none",),
            elementwise=True,
        ),
        Loss(
            "sigmoid",
            (_LOGITS,),
            (Param("reduction", "none", "'none'"),),
            "s = 1 / (1 + exp(-x))",
            "ds/dx = s (1 - s)",
            "value: s (1 + |x| (1 - s)); gradient: s (1 - s) (1 + |x|) + s^2. Derivation: y = fl(s) errs by "
            "~u (s + |x| s (1 - s)) (rounding, and exp's argument conditioning |x|); autodiff computes "
            "y (1 - y), where 1 - y is exact (Sterbenz) but inherits y's absolute error, so the product errs "
            "by ~u (s (1 - s) (1 + |x|) + s^2): the s^2 term is the cancellation in 1 - y as s -> 1",
            reductions=("none",),
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "linear_cross_entropy",
            (Input("hidden", "hidden", "finite real numbers [N, D]"), _LABELS),
            (_RED, _EPS, _WEIGHT, _IGNORE,
             Param("linear_weight", None, "finite float array [V, D] (required): the projection to V classes"),
             Param("linear_bias", None, "None or a finite float array [V]")),
            "z = h W^T + b (logits [N, V], never materialised); l_i = -sum_v w_v t_iv log_softmax(z_i)_v with "
            "t = (1-eps) onehot(y_i) + eps/V, l_i = 0 for ignored i; mean = sum_i l_i / sum_{kept i} w_{y_i}",
            "G = (sum_v w_v t_iv) softmax(z_i) - w * t_i (divided by the mean's denominator); "
            "d/dh = G W, d/dW = G^T h",
            "products accumulate in float32 for float16/bfloat16 inputs, in the dtype otherwise (r = u_acc / "
            "u_dtype: 2^-16 bfloat16, 2^-13 float16, 1 else); a computed logit is off by up to gamma_D A_iv = "
            "D u_acc A_iv, A_iv = |b_v| + ||h_i|| ||W_v|| (Cauchy-Schwarz bound of sum_d |h_id| |W_vd|); value: "
            "the sparse cross-entropy scale of z, "
            "(1 + log2 V) sum_v |w_v t_iv| (1 + |z_iv| + |lse(z_i)|), plus D r sum_v (|T_i| p_iv + |w_v t_iv|) "
            "A_iv, T_i = sum_v w_v t_iv; G's scale g_iv = (1 + log2 V) (|T_i| p_iv + |w_v t_iv|) (1 + |z_iv| + "
            "|lse(z_i)|) + D r |T_i| p_iv (A_iv + sum_c p_ic A_ic); grad (h): ((1 + V r) |G| + g) |W|; "
            "grad_linear_weight: ((1 + N r) |G| + g)^T |h| (G rounded to the dtype, then gamma_V and gamma_N "
            "for the two products); plus (smallest normal / u) sum_v |W_v| (sum_i |h_i|): an entry of G may "
            "underflow (flush-to-zero)" + _RED_SCALE,
            variants=("smoothing_over_c_minus_1", "mean_over_count", "all_ignored_zero"),
            classes_axis=False,
            differentiable=("hidden", "linear_weight"),
        ),
        Loss(
            "sigmoid_focal_loss",
            (_LOGITS, _TARGETS01),
            (_RED, _ALPHA, _GAMMA),
            "l = a_t (1 - p_t)^gamma ce, ce = z softplus(-x) + (1-z) softplus(x), p = sigmoid(x), "
            "1 - p_t = z sigmoid(-x) + (1-z) sigmoid(x), a_t = alpha z + (1-alpha)(1-z) (1 without alpha); "
            "gamma = 0 is alpha-weighted sigmoid CE",
            "dl/dx = a_t [gamma (1-p_t)^(gamma-1) (1-2z) p (1-p) ce + (1-p_t)^gamma (p - z)]",
            "q = 1 - p_t, D = 1 + |x| (sigmoid's relative error, and 1 - p_t formed by subtraction: ~u "
            "absolute); value: a_t [q^gamma S_ce + gamma q^(gamma-1) ce D], S_ce = (1 + 2|z|)(|x| + "
            "log1p(exp(-|x|))) as sigmoid CE; gradient: a_t [q^gamma (1 + 2|z| + D) + gamma q^(gamma-1) D "
            "(|p - z| + |1-2z| (p (1-p) + p^2) ce) + gamma |gamma-1| q^(gamma-2) D |1-2z| p (1-p) ce]"
            + _RED_SCALE,
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "cosine_similarity",
            (Input("predictions", "predictions", "vectors along the axis (real numbers)"),
             Input("targets", "targets", "vectors of the same shape (real numbers)")),
            (_RED, _AXIS),
            "l_i = x_i . y_i / (|x_i| |y_i|) along the axis; a zero vector makes its sample NaN (0/0)",
            "dl/dx = y / (|x| |y|) - l x / |x|^2",
            "value: (1 + log2 D) (sum |x y| / (|x| |y|) + |l|) + offset (the dot product and both norms are sums "
            "of D terms; the distance variant rounds 1 - l); gradient: (1 + log2 D) (|y| / (|x| |y|) + (|l| + "
            "sum |x y| / (|x| |y|)) |x| / |x|^2)" + _RED_SCALE,
            variants=("cosine_norm_floor_1e-8", "cosine_product_floor_1e-8", "negated_cosine_norm_floor_1e-7",
                      "cosine_distance"),
        ),
        Loss(
            "huber",
            (_PRED, _REAL_TARGET),
            (_RED, _DELTA),
            "l = d^2 / 2 if |d| <= delta else delta (|d| - delta / 2), d = x - y; mean over all elements",
            "dl/dx = d if |d| <= delta else delta sign(d) (continuous at |d| = delta)",
            "value: d^2 / 2 where |d| <= delta, else delta (|d| + delta / 2) (delta |d| - delta^2 / 2 cancels "
            "near |d| = delta); gradient: min(|d|, delta) (d = x - y rounds by u |d|)" + _RED_SCALE,
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "smooth_l1",
            (_PRED, _REAL_TARGET),
            (_RED, _BETA),
            "l = d^2 / (2 beta) if |d| < beta else |d| - beta / 2, d = x - y (= huber(delta=beta) / beta; "
            "beta = 0: |d|)",
            "dl/dx = d / beta if |d| < beta else sign(d) (0 at d = 0 when beta = 0)",
            "value: d^2 / (2 beta) where |d| < beta, else |d| + beta / 2; gradient: min(|d| / beta, 1) "
            "(1 when beta = 0)" + _RED_SCALE,
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "log_cosh",
            (_PRED, _REAL_TARGET),
            (_RED,),
            "l = log(cosh(d)), d = x - y",
            "dl/dx = tanh(d)",
            "value: 1 + 3 |d| (implementations form d + softplus(-2 d) - log 2 (Keras) or logaddexp(d, -d) - "
            "log 2 (Optax): terms up to 2 |d| + log 2 whose difference is the value); gradient: 1 + 2 |d| "
            "(autodiff of logaddexp(d, -d) forms exp(+-d - logaddexp(d, -d)), whose argument is a difference of "
            "terms of size |d|: u |d| relatively; 1 - 2 sigmoid(-2 d) rounds by u absolute)" + _RED_SCALE,
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "hinge",
            (_LOGITS, _SIGNS),
            (_RED,),
            "l = max(0, 1 - y x)",
            "dl/dx = -y where 1 - y x > 0, 0 where it is < 0; at the margin (1 - y x = 0 exactly) 0 "
            "(variants: half or all of -y)",
            "value: 1 + |y x| (1 - y x rounds by u (1 + |y x|); its sign is exact); gradient: |y|" + _RED_SCALE,
            variants=("kink_gradient_half", "kink_gradient_full"),
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "squared_hinge",
            (_LOGITS, _SIGNS),
            (_RED,),
            "l = max(0, 1 - y x)^2",
            "dl/dx = -2 y max(0, 1 - y x)",
            "value: m^2 + 2 m (1 + |y x|), m = max(0, 1 - y x) (m rounds by u (1 + |y x|)); gradient: "
            "2 |y| (m + 1 + |y x|) where m > 0, else 0" + _RED_SCALE,
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "poisson_nll",
            (Input("predictions", "predictions", "log-rate x (log_input) or rate x >= 0"), _COUNTS),
            (_RED, _LOG_INPUT, _FULL),
            "log_input: l = exp(x) - y x; else l = x - y log(x) (0 log 0 = 0); full adds "
            "y log y - y + log(2 pi y) / 2 where y > 1",
            "log_input: dl/dx = exp(x) - y; else 1 - y / x (the Stirling term does not depend on x)",
            "value: log_input exp(x) + |y x|, else x + y (|log(x + o)| + [o != 0]), o the log offset of the "
            "variant; full adds y |log y| + y + |log(2 pi y)| / 2 + 1 where y > 1; gradient: exp(x) + y, else "
            "1 + y / (x + o)" + _RED_SCALE,
            variants=("poisson_log_offset_1e-8", "poisson_log_offset_1e-7"),
            elementwise=True,
            classes_axis=False,
        ),
        Loss(
            "ctc",
            (Input("logits", "logits", "real numbers [N, T, C]: frames on axis 1, classes (the blank included) last; "
                   "frames past T_i are padding"),
             Input("labels", "label_sequences", "integer labels [N, S] in [0, C) other than the blank; entries past "
                   "the target length L_i are padding (any value)")),
            (_RED, _BLANK, _INPUT_LENGTHS, _TARGET_LENGTHS, _ZERO_INF),
            "l_i = -log sum over alignments a in B^-1(y_i) of prod_{t < T_i} softmax(x_it)_{a_t}, B removing repeats "
            "then blanks (a repeated label needs a blank between); +inf where no alignment fits in T_i frames (0 "
            "with zero_infinity); mean = sum_i l_i / N (torch and paddle divide by L_i first: a variant); "
            "computed by the forward-backward recursion in log space",
            "dl_i/dx_itc = softmax(x_it)_c - gamma_itc for t < T_i (0 past T_i), gamma the posterior of class c at "
            "frame t (alpha_t beta_t / p summed over the states of c); 0 where no alignment fits",
            "per sequence: value sum_{t < T_i} (1 + max_c |x_tc| + |lse(x_t)| + max_s |alpha_t(s)|) + |l|, non-finite "
            "x counting 0 (log_softmax "
            "per frame errs by u (1 + |x| + |lse|); every recursion step rounds the running log-probability alpha_t, "
            "and dl/dlp_t(c) = -gamma_t(c) sums to 1 over c, so each frame's errors add once); gradient softmax(x_t) "
            "(1 + max_c |x_tc| + |lse(x_t)|) + (gamma_t + softmax(x_t)) (1 + 2 S_value) (gamma = exp(alpha + beta - "
            "lp + l): its exponent carries the value's absolute error twice, forward and backward; autodiff through "
            "log_softmax subtracts softmax * sum_c (softmax - gamma), a sum that inherits gamma's error)" + _RED_SCALE,
            variants=("ctc_mean_over_target_lengths",),
            sequence=True,
        ),
    )
}


def get_loss(loss_id: str) -> Loss:
    """The catalog entry for ``loss_id``; ValueError naming the known ids otherwise."""
    try:
        return CATALOG[loss_id]
    except KeyError:
        raise ValueError(f"loss_id: unknown loss {loss_id!r}; expected one of {sorted(CATALOG)}") from None


def get_variant(name: str) -> Variant:
    """The variant declaration ``name``; ValueError naming the known variants otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"variant: unknown variant {name!r}; expected one of {sorted(VARIANTS)}") from None
