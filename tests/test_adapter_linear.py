"""linear_cross_entropy through every installed adapter: one gradient per differentiable input (hidden
states and projection), each in the dtype under test and the shape of its input, and within the
error-model bound of the streamed reference; GPU-only adapters say why they are skipped."""

from __future__ import annotations

import numpy as np
import pytest

from lossconf.adapters.loading import load_adapter
from lossconf.errormodel import compare
from lossconf.reference import kappa, numpy_ref
from lossconf.reference.catalog import CATALOG
from lossconf.reference.dtypes import numpy_dtype

N, D, V = 6, 8, 50
QUANTITIES = CATALOG["linear_cross_entropy"].quantities


def _inputs(dtype: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    nd = numpy_dtype(dtype)
    h = rng.standard_normal((N, D)).astype(nd)
    params = {"linear_weight": (rng.standard_normal((V, D)) / 3).astype(nd),
              "linear_bias": rng.standard_normal(V).astype(nd)}
    return h, rng.integers(0, V, N), params


@pytest.mark.parametrize("adapter", ["torch", "jax", "tensorflow"])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_every_linear_impl_returns_both_gradients_within_the_bound(framework, adapter, reduction):
    fw = framework(adapter)
    impls = [i for i in fw.describe["implementations"] if i["loss"] == "linear_cross_entropy"]
    assert impls, f"{adapter} lists no linear_cross_entropy implementation"
    rng = np.random.default_rng(4)
    for impl in impls:
        for dtype in ("bfloat16", "float32"):
            if dtype not in impl["dtypes"] or reduction not in impl["reductions"]:
                continue
            h, y, params = _inputs(dtype, rng)
            value, grads = fw.call(impl["name"], dtype, h, y, {"reduction": reduction, **params})
            assert isinstance(grads, tuple) and len(grads) == 2, impl["name"]
            ref = numpy_ref.evaluate("linear_cross_entropy", h, y, reduction=reduction, **params)
            truths = [(ref.value, ref.scale_value), (ref.grad, ref.scale_grad), *ref.grads.values()]
            for quantity, got, (truth, scale), shape in zip(QUANTITIES, (value, *grads), truths,
                                                             (value.shape, h.shape, (V, D)), strict=True):
                assert got.dtype == numpy_dtype(dtype) and got.shape == shape, (impl["name"], quantity)
                result = compare(got, truth, scale, dtype, kappa("linear_cross_entropy", quantity))
                assert result.ok, (impl["name"], dtype, quantity, result)


def test_chunk_settings_differ_from_the_reference_path_only_by_rounding(framework):
    """The chunked path (two chunk settings) and options=None agree to a few float32 ulps."""
    fw = framework("torch")
    names = [n for n in fw.impls if n.startswith("linear_cross_entropy")]
    assert {"linear_cross_entropy", "linear_cross_entropy[chunked,rows=32]", "linear_cross_entropy[chunked,rows=8]"
            } <= set(names)
    h, y, params = _inputs("float32", np.random.default_rng(9))
    results = [fw.call(n, "float32", h, y, {"reduction": "sum", **params}) for n in names]
    for value, (gh, gw) in results[1:]:
        np.testing.assert_allclose(value, results[0][0], rtol=1e-5)
        np.testing.assert_allclose(gh, results[0][1][0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(gw, results[0][1][1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["liger", "cut_cross_entropy", "transformer_engine"])
def test_gpu_only_adapters_say_they_need_cuda(name):
    reason = load_adapter(name).available()
    try:
        open("/proc/driver/nvidia/version").close()
        pytest.skip("an NVIDIA driver is present: the adapter may run here")
    except OSError:
        assert reason is not None and reason.startswith("needs CUDA"), reason
