"""tinygrad adapter: framework-specific checks.

tinygrad is never imported here: calls go to a lossconf worker process (``framework("tinygrad")``).
Expected numbers come from the tutorial documents (printed values) and arithmetic, never from tinygrad.
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

WHY = "adapter_checks:unsupported_reason_in_worker"


@pytest.fixture(scope="module")
def fw(framework):
    return framework("tinygrad")


def test_table_names_are_unique(fw) -> None:
    assert_names_unique(fw)


def test_backend_is_cpu_with_clang_else_python(fw) -> None:
    """The CPU device compiles with clang; without it the adapter runs tinygrad's PYTHON backend."""
    flags = fw.describe["environment"]["flags"]
    assert flags["backend"] == ("CPU" if flags["clang_on_path"] == "True" else "PYTHON")


def test_bfloat16_round_trip_is_exact(fw) -> None:
    assert_round_trip_exact(fw, "adapter_checks", EXACT_BFLOAT16, "bfloat16")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_impl_keeps_dtype_and_shape(fw, dtype: str) -> None:
    assert_keeps_dtype_and_shape(fw, dtype)


def test_reproduces_document_rel1_float32(fw) -> None:
    """documents/001 prints rel1 = [0.02215516 3.09967351] from float32 softmax cross-entropy."""
    value, grad = fw.call("sparse_categorical_crossentropy", "float32", LOGITS.astype(np.float32), LABELS)
    np.testing.assert_allclose(value, REL1_PRINTED, rtol=2e-7)
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-6)  # softmax - onehot sums to 0 per row


def test_ignore_index_mean_divides_by_kept_count(fw) -> None:
    """Ignoring label 1 leaves sample 0: the mean is its loss, 0.02215516 (documents/001)."""
    value, _ = fw.call("sparse_categorical_crossentropy", "float32", LOGITS.astype(np.float32), LABELS,
                       {"ignore_index": 1, "reduction": "mean"})
    np.testing.assert_allclose(value, REL1_PRINTED[0], rtol=2e-7)


def test_declared_restrictions(fw) -> None:
    """sparse_categorical_crossentropy: classes last, and -1 means 'ignore nothing'; cross_entropy: axis 1."""
    name = "sparse_categorical_crossentropy"
    assert fw.run(WHY, name, {"axis": 1}, (2, 3, 4), (2, 4)) is not None
    assert "ignore nothing" in fw.run(WHY, name, {"ignore_index": -1}, (2, 3), (2,))
    assert fw.run(WHY, "cross_entropy[probs]", {"axis": 1}, (2, 3, 4), (2, 3, 4)) is None


def test_this_process_never_imported_tinygrad(fw) -> None:
    import sys

    assert "tinygrad" not in sys.modules
