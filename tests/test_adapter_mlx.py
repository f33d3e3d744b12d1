"""MLX adapter: framework-specific checks.

MLX is never imported here: calls go to a lossconf worker process (``framework("mlx")``). Expected
numbers come from the tutorial documents (printed values), from a declared variant's citation or from
arithmetic, never from MLX itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from adapter_checks import (
    EXACT_BFLOAT16,
    LABELS,
    LOGITS,
    REL1_PRINTED,
    assert_keeps_dtype_and_shape,
    assert_names_unique,
    assert_round_trip_exact,
)

from lossconf.reference.dtypes import DTYPES

WHY = "adapter_checks:unsupported_reason_in_worker"


@pytest.fixture(scope="module")
def fw(framework):
    return framework("mlx")


def test_table_names_are_unique(fw) -> None:
    assert_names_unique(fw)


def test_runs_on_the_cpu_device(fw) -> None:
    env = fw.describe["environment"]
    assert env["framework"] == "mlx" and env["device"] == "cpu"
    assert "cpu" in env["flags"]["default_device"]


@pytest.mark.parametrize("dtype", ["bfloat16", "float64"])
def test_round_trip_is_exact(fw, dtype: str) -> None:
    """bfloat16 via float32; float64 stays float64 (mx.array of a float64 ndarray alone gives float32)."""
    values = EXACT_BFLOAT16 if dtype == "bfloat16" else np.array([1.0 + 2.0**-40, 1e-310, -3e300])
    assert_round_trip_exact(fw, "adapter_checks", values, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_impl_keeps_dtype_and_shape(fw, dtype: str) -> None:
    assert_keeps_dtype_and_shape(fw, dtype)


def test_reproduces_document_rel1_float32(fw) -> None:
    """documents/001 prints rel1 = [0.02215516 3.09967351] from float32 softmax cross-entropy."""
    value, _ = fw.call("cross_entropy", "float32", LOGITS.astype(np.float32), LABELS)
    np.testing.assert_allclose(value, REL1_PRINTED, rtol=2e-7)


def test_class_weights_are_per_target_and_mean_divides_by_n(fw) -> None:
    """weight[y] scales each sample; mean is sum / N (variant mean_over_count), not sum / sum(w[y])."""
    assert fw.impls["cross_entropy"]["variant"] == "mean_over_count"
    weight = np.array([1.0, 2.0, 3.0], np.float32)  # w[y] = [3, 2]; sum / sum(w[y]) would divide by 5
    value, _ = fw.call("cross_entropy", "float32", LOGITS.astype(np.float32), LABELS,
                       {"weight": weight, "reduction": "mean"})
    np.testing.assert_allclose(value, (3 * REL1_PRINTED[0] + 2 * REL1_PRINTED[1]) / 2, rtol=1e-6)


def test_binary_cross_entropy_follows_declared_log_clamp(fw) -> None:
    """MLX docs: with_logits=False clips log(p) to >= -100, so p = 0 under target 1 costs exactly 100."""
    assert fw.impls["binary_cross_entropy[probs]"]["variant"] == "log_clamp_-100"
    value, _ = fw.call("binary_cross_entropy[probs]", "float32", np.array([0.0, 1.0], np.float32),
                       np.array([1.0, 0.0], np.float32))
    assert value.tolist() == [100.0, 100.0]


def test_declared_restrictions(fw) -> None:
    """label_smoothing = 1 raises in MLX; per-target weights cannot express class-weighted smoothing."""
    assert "label_smoothing >= 1" in fw.run(WHY, "cross_entropy", {"label_smoothing": 1.0}, (2, 3), (2,))
    assert fw.run(WHY, "cross_entropy", {"weight": np.ones(3), "label_smoothing": 0.1}, (2, 3), (2,))
    assert fw.run(WHY, "cross_entropy", {"weight": np.ones(3)}, (2, 3), (2,)) is None
    assert fw.run(WHY, "mse_loss", {}, (2, 3), (3,)) is not None  # no broadcasting


def test_this_process_never_imported_mlx(fw) -> None:
    import sys

    assert fw.describe["environment"]["version"]
    assert "mlx" not in sys.modules
