"""Mechanisms of known deviations: input conditions and models (see ``lossconf.known``).

A known deviation names its mechanism, never random case ids, so it explains the same behaviour
under every seed:

- an *input condition* is computed from the case's inputs in the dtype under test (``INPUTS``),
  e.g. ``difference_above_sqrt_max``: some |x - y| squares past the dtype's largest number;
- a *model* is a computation that reproduces the deviating result (``MODELS``), e.g. ``clip_64``:
  the reference on logits clipped to max - 64. A check is ``known`` through a model only when the
  framework's result agrees with the model within the error-model bound, so a result that deviates
  in some other way stays a ``fail``.

Models are evaluated only for checks that did not pass. Each returns the reference's
(value, grad, scale_value, scale_grad) for the modelled computation; models go through the
reference's public ``evaluate`` on transformed inputs, or are a short float64 formula.
"""

from __future__ import annotations

from functools import partial

from lossconf.known_models.base import Inputs, Model
from lossconf.known_models.clipping import (
    _bce_backward_eps,
    _bce_backward_eps_float32,
    _clip_64,
    _clip_64_mean_over_all_samples,
    _ctc_log_zero_floor,
    _warpctc_probability_floor,
    _warpctc_zero_log_sentinel,
)
from lossconf.known_models.conditions import INPUTS, input_facts
from lossconf.known_models.conventions import _mean_over_all_samples, _smoothing_over_last_axis
from lossconf.known_models.keras_backends import (
    _keras_bce_on_torch,
    _keras_focal_on_jax,
    _keras_focal_on_torch,
    _keras_probability_losses,
    _torch_clamp_mask,
)
from lossconf.known_models.precision import (
    _computed_in_float32,
    _cosine_backward_in_dtype,
    _float32_arithmetic,
    _in_float32_arithmetic,
    _two_log_bce_backward_in_dtype,
)
from lossconf.known_models.summation import (
    _class_sum_in_dtype,
    _class_sums_in_order,
    _cosine_sums_in_order,
    _log_softmax_backward_class_sum_in_order,
    _mean_in_packet_lanes,
    _reduction_in_order,
)

__all__ = ["INPUTS", "MODELS", "Inputs", "evaluate_model", "input_facts"]

MODELS: dict[str, tuple[str, Model]] = {
    "warpctc_probability_floor": ("CTC on class probabilities floored at the dtype's smallest normal number "
                                  "(-log 1.2e-38 = 87.3 per frame at most in float32)", _warpctc_probability_floor),
    "ctc_log_zero_floor": ("TensorFlow's dense CTC with impossible start and end states at log(1e-307) = -706.9 "
                           "instead of -inf", _ctc_log_zero_floor),
    "clip_64": ("log-probabilities of logits clipped to max(x) - 64 along the class axis", _clip_64),
    "clip_64_mean_over_all_samples": ("clip_64 and mean_over_all_samples together (Paddle's hard-label "
                                      "cross_entropy with ignored labels)", _clip_64_mean_over_all_samples),
    "class_sum_in_dtype": ("soft-label CE -sum_c t_c log p_c with p (clipped at -64), log p and each term "
                           "rounded to the dtype and the class sum accumulated in order in the dtype",
                           _class_sum_in_dtype),
    "bce_backward_eps": ("binary CE backward (p - z) / max(p (1 - p), 1e-12), the 1e-12 in the dtype",
                         _bce_backward_eps),
    "bce_backward_eps_float32": ("binary CE backward (p - z) / max(p (1 - p), 1e-12), the 1e-12 a float32 "
                                 "constant, then in the dtype", _bce_backward_eps_float32),
    "log_softmax_backward_class_sum_in_order": ("cross entropy's gradient as torch's log_softmax backward forms it "
                                                "over a class axis that is not last: g - softmax(x) sum_c g_c, "
                                                "g = -w t', the class sum in class order in the dtype",
                                                _log_softmax_backward_class_sum_in_order),
    "cosine_backward_in_dtype": ("cosine similarity's gradient b / n_x - (sum_j b_j x_j / n_x^2) x / |x| formed op by "
                                 "op in the dtype as torch's autograd does (b = y / n_y)", _cosine_backward_in_dtype),
    "warpctc_zero_log_sentinel": ("warpctc's CTC gradient with probabilities floored, p instead of p - posterior "
                                  "where the log posterior sum is exactly 0.0 in the dtype",
                                  _warpctc_zero_log_sentinel),
    "mean_over_all_samples": ("'mean' divides the sum by every sample, ignored ones included", _mean_over_all_samples),
    "float32_arithmetic": ("the computation (or part of it) in float32: the truth within float32's error bound",
                           _float32_arithmetic),
    "computed_in_float32": ("computed in float32 with float32 constants, the result rounded to the dtype "
                            "(a compiler upcasting float16/bfloat16 arithmetic)", _computed_in_float32),
    "two_log_bce_backward_in_dtype": ("binary CE gradient -g z / p + g (1 - z) / (1 - p) formed op by op in the "
                                      "dtype, the upstream g = 1 / (N C) of 'mean' applied first (autodiff of the "
                                      "two-log form)", _two_log_bce_backward_in_dtype),
    "class_sums_in_order": ("Keras's categorical CE on probabilities along a class axis that is not the last, as "
                            "TensorFlow reduces it: sum(p), the loss's class sum and its gradient's each "
                            "accumulated in class order in the dtype (float32 for bfloat16)", _class_sums_in_order),
    "mean_in_packet_lanes": ("'mean' of the elementwise losses accumulated in order per lane of a 32-byte "
                             "packet, lanes added pairwise, in the dtype (Eigen's full reduction)",
                             _mean_in_packet_lanes),
    "reduction_in_order": ("'mean' or 'sum' of the elementwise losses accumulated in order with one accumulator "
                           "in the dtype (XLA's CPU reduce loop)", _reduction_in_order),
    "cosine_sums_in_order": ("cosine similarity with its three sums along the axis accumulated in order in the "
                             "dtype (Paddle's sum over a reduced axis)", _cosine_sums_in_order),
    "smoothing_over_last_axis": ("label smoothing eps / shape[-1] instead of eps / C when the class axis is not last",
                                 _smoothing_over_last_axis),
    "keras_focal_on_jax": ("Keras's focal loss from logits on the jax backend op by op in the dtype: sigmoid as "
                           "1 / (1 + exp(-x)), clipped unguarded binary CE, q = 1 - p_t (jax.vjp's gradient)",
                           _keras_focal_on_jax),
    "keras_focal_on_torch": ("Keras's focal loss from logits on the torch backend: torch.sigmoid, torch.clip, "
                             "F.binary_cross_entropy (logs clamped at -100, backward over max(p (1 - p), 1e-12)), "
                             "q = 1 - p_t in the dtype", _keras_focal_on_torch),
    "keras_bce_on_torch": ("Keras's binary CE on probabilities on the torch backend: torch.clip, then "
                           "F.binary_cross_entropy (logs clamped at -100, backward over max(p (1 - p), 1e-12) op by "
                           "op in the dtype)", _keras_bce_on_torch),
    "keras_bce_on_torch_compiled": ("keras_bce_on_torch as inductor compiles it on CPU: clip bounds, logs and "
                                    "backward in float32, results rounded to the dtype; the clamp's backward "
                                    "mask compares with the bounds in the dtype",
                                    partial(_keras_bce_on_torch, arithmetic="float32")),
    "keras_focal_on_torch_compiled": ("keras_focal_on_torch as inductor compiles it on CPU: the sigmoid, the "
                                      "clipped BCE (keras_bce_on_torch_compiled) and the focal factor each a "
                                      "graph in float32, its outputs rounded to the dtype",
                                      partial(_keras_focal_on_torch, arithmetic="float32")),
    "keras_probs_on_jax": ("Keras's KLDivergence and CategoricalCrossentropy(probs) on the jax backend, each "
                           "backward step rounded to the dtype, jnp.clip's gradient half at a bound",
                           _keras_probability_losses),
    "keras_probs_on_torch": ("Keras's KLDivergence and CategoricalCrossentropy(probs) on the torch backend, each "
                             "backward step rounded to the dtype, torch.clip's gradient whole at a bound",
                             partial(_keras_probability_losses, clip_grad=_torch_clamp_mask)),
    "keras_focal_on_jax+float32_arithmetic": ("keras_focal_on_jax within float32's bound (its mean in float32)",
                                              _in_float32_arithmetic(_keras_focal_on_jax)),
    "keras_focal_on_torch+float32_arithmetic": ("keras_focal_on_torch within float32's bound (its mean in float32)",
                                                _in_float32_arithmetic(_keras_focal_on_torch)),
    "smoothing_over_last_axis+float32_arithmetic": ("smoothing_over_last_axis within float32's bound",
                                                    _in_float32_arithmetic(_smoothing_over_last_axis)),
}


def evaluate_model(name: str, loss: str, inputs: Inputs, dtype: str, variant: str | None) -> tuple:
    """(value, grad, scale_value, scale_grad) of model ``name`` on the cast inputs of one case."""
    return MODELS[name][1](loss, inputs, dtype, variant)
