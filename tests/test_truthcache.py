"""The on-disk truth cache: keyed by content, shared safely, bounded, and never wrong."""

from __future__ import annotations

import numpy as np

from lossconf.cases import all_cases
from lossconf.truthcache import TruthCache, content_key
from lossconf.verdicts import Truths

CASES = all_cases(0, 4, losses=("softmax_cross_entropy", "binary_cross_entropy"), kinds=("edge", "random"))


def _all(truths: Truths) -> list[tuple]:
    return [truths.get(c, d) for c in CASES for d in ("float16", "bfloat16", "float64")]


def test_a_second_run_evaluates_nothing_and_gets_the_same_truths(tmp_path):
    first = Truths(disk=TruthCache(tmp_path))
    cold = _all(first)
    assert first.evaluated > 0 and first.disk.hits == 0
    second = Truths(disk=TruthCache(tmp_path))
    warm = _all(second)
    assert second.evaluated == 0 and second.disk.hits == first.evaluated
    for a, b in zip(cold, warm, strict=True):
        for x, y in zip(a, b, strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)


def test_a_torn_entry_is_recomputed_not_read(tmp_path):
    cache = TruthCache(tmp_path)
    Truths(disk=cache).get(CASES[0], "float32")
    (entry,) = [p for p in tmp_path.rglob("*.pkl")]
    entry.write_bytes(entry.read_bytes()[:20])  # as if another run had died mid-write without the rename
    again = Truths(disk=TruthCache(tmp_path))
    value = again.get(CASES[0], "float32")[0]
    assert again.evaluated == 1
    assert np.array_equal(value, Truths().get(CASES[0], "float32")[0], equal_nan=True)


def test_the_key_is_the_content_the_truth_depends_on():
    x = np.array([[1.0, 2.0]], dtype=np.float32)
    y = np.array([[0.0, 1.0]], dtype=np.float32)
    base = content_key("softmax_cross_entropy", "float32", None, x, y, {"reduction": "none"})
    assert base == content_key("softmax_cross_entropy", "float32", None, x.copy(), y, {"reduction": "none"})
    for other in (
        content_key("softmax_cross_entropy", "float32", "keras_clip", x, y, {"reduction": "none"}),
        content_key("softmax_cross_entropy", "float32", None, x + 1, y, {"reduction": "none"}),
        content_key("softmax_cross_entropy", "float32", None, x.astype(np.float64), y, {"reduction": "none"}),
        content_key("softmax_cross_entropy", "float32", None, x, y, {"reduction": "mean"}),
        content_key("softmax_cross_entropy", "float32", None, x.reshape(2, 1), y, {"reduction": "none"}),
        content_key("softmax_cross_entropy", "float32", None, x, y, {"reduction": "none", "weight": x[0]}),
    ):
        assert other != base


def test_trim_keeps_the_directory_within_its_bound_most_recent_first(tmp_path):
    cache = TruthCache(tmp_path, max_bytes=10_000)
    for i in range(20):
        cache.put(f"{i:064x}", (np.full(200, float(i)),))  # about 1.8 kB each
    sizes = sum(p.stat().st_size for p in tmp_path.rglob("*.pkl"))
    assert sizes > 10_000
    cache.trim()
    kept = sorted(int(p.stem, 16) for p in tmp_path.rglob("*.pkl"))
    assert sum(p.stat().st_size for p in tmp_path.rglob("*.pkl")) <= 10_000
    assert kept and kept == list(range(20 - len(kept), 20))


def test_disabled_cache_stores_nothing(tmp_path, monkeypatch):
    from lossconf.truthcache import default_directory

    monkeypatch.setenv("LOSSCONF_TRUTH_CACHE", "off")
    assert default_directory() is None
    truths = Truths(disk=TruthCache(None))
    truths.get(CASES[0], "float32")
    assert truths.evaluated == 1 and not list(tmp_path.iterdir())


def test_a_truth_too_large_for_the_memory_cache_is_evaluated_once_for_all_its_quantities():
    """A check judges value, grad and grad_linear_weight one after another: a truth above a quarter of
    the budget (the LLM-head cases) must not be recomputed for each; a second such truth replaces it."""
    cases = all_cases(0, 16, losses=("linear_cross_entropy",), kinds=("edge",))[:2]
    truths = Truths(budget_bytes=1024)  # every truth is "large" here
    for _ in range(3):
        truths.get(cases[0], "float32")
    assert truths.evaluated == 1
    truths.get(cases[1], "float32")
    truths.get(cases[0], "float32")
    assert truths.evaluated == 3
