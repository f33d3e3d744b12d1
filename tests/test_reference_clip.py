"""The clip variants reproduce Keras, whose clip bounds are held in the input's dtype.

Keras clips probabilities to [epsilon, 1 - epsilon] with epsilon = 1e-7 converted to the tensor's dtype,
so the bounds are lo = fl_d(1e-7) and hi = fl_d(1 - lo): in float16 and bfloat16 hi is 1 and p = 1 is not
clipped at all. The numbers below were printed by Keras 3.15.1 on TensorFlow 2.21 (CPU), value and
gradient of ``keras.ops.binary_crossentropy`` / ``keras.ops.categorical_crossentropy`` with
``tf.GradientTape``, inputs cast to the dtype first. The reference's truth rounded to the dtype must
match each to within one ulp of the dtype (Keras rounds its own log once or twice).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from lossconf.reference import numpy_ref
from lossconf.reference.dtypes import numpy_dtype

INF = np.inf
BCE_P, BCE_Z = [0.0, 1.0, 1 - 1e-7, 1e-7], [1.0, 0.0, 0.0, 1.0]
CCE_P, CCE_T = [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]], [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]  # edge_cce_p0_t0

KERAS = {  # dtype -> (bce values, bce grads, cce values, cce grads)
    "float16": ([15.9453125, INF, INF, 15.9453125], [0.0, INF, INF, -INF],
                [0.0, 0.693359375], [[1.0, 0.0, 1.0], [-1.0, 1.0, 1.0]]),
    "bfloat16": ([16.125, INF, INF, 16.125], [0.0, INF, INF, -9961472.0],
                 [0.0, 0.69140625], [[1.0, 0.0, 1.0], [-1.0, 1.0, 1.0]]),
    "float32": ([16.11809539794922, 15.942384719848633, 15.942384719848633, 16.11809539794922],
                [0.0, 0.0, 8388608.0, -10000000.0],
                [1.1920928955078125e-07, 0.6931471824645996], [[0.0, 0.0, 0.0], [-1.0, 1.0, 1.0]]),
    "float64": ([16.11809565095832, 16.118095651484676, 16.118095651484676, 16.11809565095832],
                [0.0, 0.0, 10000000.005263558, -10000000.0],
                [1.0000000494736474e-07, 0.6931471805599453], [[0.0, 0.0, 0.0], [-1.0, 1.0, 1.0]]),
}


def assert_within_one_ulp(truth, printed, dtype: str, what: str) -> None:
    d = numpy_dtype(dtype)
    with np.errstate(over="ignore"):  # a truth beyond the dtype's range rounds to inf, as Keras's does
        got = np.asarray(truth, np.float64).astype(d).astype(np.float64)
    printed = np.asarray(printed, np.float64)
    finite = np.isfinite(printed)
    assert np.array_equal(got[~finite], printed[~finite]), f"{what}: {got} vs Keras {printed}"
    spacing = np.spacing(np.abs(printed[finite]).astype(d)).astype(np.float64)
    spacing = np.maximum(spacing, float(ml_dtypes.finfo(d).smallest_subnormal))
    assert np.all(np.abs(got[finite] - printed[finite]) <= spacing), f"{what}: {got} vs Keras {printed}"


@pytest.mark.parametrize("dtype", sorted(KERAS))
def test_clip_variants_match_keras(dtype):
    bce_v, bce_g, cce_v, cce_g = KERAS[dtype]
    cast = numpy_dtype(dtype).type
    value, grad = numpy_ref.value_and_grad("binary_cross_entropy", np.array(BCE_P).astype(cast),
                                           np.array(BCE_Z).astype(cast), variant="clip_probabilities_1e-7")
    assert_within_one_ulp(value, bce_v, dtype, "bce value")
    assert_within_one_ulp(grad, bce_g, dtype, "bce grad")
    value, grad = numpy_ref.value_and_grad("categorical_cross_entropy", np.array(CCE_P).astype(cast),
                                           np.array(CCE_T).astype(cast), variant="normalize_then_clip_1e-7")
    assert_within_one_ulp(value, cce_v, dtype, "cce value")
    assert_within_one_ulp(grad, cce_g, dtype, "cce grad")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_at_one_one_is_minus_log_hi(dtype):
    """doc001_bce_one_one under the clip: p = 1 is clipped to hi, so the loss is -log(hi), not 1e-7
    (Keras: float32 1.1920929e-07, float64 1.0000000494736474e-07)."""
    printed = {"float32": 1.1920928955078125e-07, "float64": 1.0000000494736474e-07}[dtype]
    one = np.ones(1, numpy_dtype(dtype))
    value, grad = numpy_ref.value_and_grad("binary_cross_entropy", one, one, variant="clip_probabilities_1e-7")
    assert_within_one_ulp(value, [printed], dtype, "value")
    assert_within_one_ulp(grad, [0.0], dtype, "grad")
