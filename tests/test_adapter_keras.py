"""Keras 3 on JAX and on torch: one table shared with the TensorFlow adapter's Keras rows, each backend
in its own worker with KERAS_BACKEND set before Keras is imported. Frameworks only in the workers."""

from __future__ import annotations

import numpy as np
import pytest

BACKENDS = {"keras_jax": "jax", "keras_torch": "torch"}


@pytest.mark.parametrize("name", list(BACKENDS))
def test_runs_on_its_backend_and_records_its_conventions(framework, name) -> None:
    fw = framework(name)
    flags = fw.describe["environment"]["flags"]
    assert flags["keras_backend"] == BACKENDS[name]
    assert flags["keras_epsilon"] == "1e-07" and flags["keras_floatx"] == "float32"
    assert "keras_dtype_policy" in flags and BACKENDS[name] in flags
    # off TensorFlow Keras promotes float64 to float32 (known keras_*-float64-promoted-to-float32)
    assert flags["keras_result_type_float64_float32"] == "float32"


@pytest.mark.parametrize("name", list(BACKENDS))
def test_hinge_declares_its_backends_tie_gradient(framework, name) -> None:
    """ops.maximum at a tie: TensorFlow gives the first argument the whole gradient, JAX and torch half."""
    def hinge(adapter):
        return next(i for i in framework(adapter).describe["implementations"] if i["name"] == "Hinge")["variant"]
    assert hinge("tensorflow") == "kink_gradient_full"
    assert hinge(name) == "kink_gradient_half"


@pytest.mark.parametrize("name", list(BACKENDS))
def test_the_keras_table_is_the_tensorflow_adapters_keras_rows(framework, name) -> None:
    tf_rows = {i["name"]: i["api"] for i in framework("tensorflow").describe["implementations"]
               if i["api"].startswith("keras.")}
    rows = {i["name"]: i["api"] for i in framework(name).describe["implementations"]}
    assert rows == tf_rows and len(rows) >= 8


@pytest.mark.parametrize("name", list(BACKENDS))
def test_mean_squared_error_in_the_dtype_under_test(framework, name) -> None:
    """MSE of documents/000-sized inputs: (x - y)^2 per element, exact in float32 for these values."""
    x, y = np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([[0.0, 2.0], [1.5, 1.0]])
    value, grad = framework(name).call("MeanSquaredError", "float32", x.astype(np.float32), y.astype(np.float32))
    assert value.dtype == np.float32
    np.testing.assert_array_equal(value, [[1.0, 0.0], [1.0, 4.0]])
    np.testing.assert_array_equal(grad, 2 * (x - y))
