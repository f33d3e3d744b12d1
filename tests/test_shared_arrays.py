"""Large arrays cross between lossconf and its workers as files in shared memory, not pickled."""

from __future__ import annotations

import pickle

import ml_dtypes
import numpy as np
import pytest

from lossconf import worker
from lossconf.adapters.loading import load_adapter
from lossconf.supervisor import Worker
from lossconf.worker import SHARED_MIN_BYTES, Shared, share, shared_directory, unshare


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.int64])
def test_a_large_array_travels_as_a_small_handle_and_arrives_intact(tmp_path, dtype):
    array = (np.arange(SHARED_MIN_BYTES // 2, dtype=np.float64) % 251 - 125).astype(dtype).reshape(-1, 64)
    handle = share(array, tmp_path)
    assert isinstance(handle, Shared) and len(pickle.dumps(handle)) < 1000
    back = unshare(handle)
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)
    back[0, 0] = 7  # copy-on-write: a framework may write to its input
    assert not list(tmp_path.iterdir()), "the receiver unlinks the file at once"


def test_small_arrays_and_other_values_are_sent_as_they_are(tmp_path):
    small = np.ones(8)
    assert share(small, tmp_path) is small and share(None, tmp_path) is None and share(1.5, tmp_path) == 1.5
    assert unshare(small) is small


def test_params_share_their_large_arrays_value_by_value(tmp_path):
    weight = np.arange(SHARED_MIN_BYTES // 4, dtype=np.float32).reshape(-1, 64)
    params = {"linear_weight": weight, "reduction": "mean", "linear_bias": np.ones(8, np.float32)}
    handles = share(params, tmp_path)
    assert isinstance(handles["linear_weight"], Shared) and handles["reduction"] == "mean"
    assert handles["linear_bias"] is params["linear_bias"]  # small: pickled as it is
    back = unshare(handles)
    assert back.keys() == params.keys() and np.array_equal(back["linear_weight"], weight)
    assert not list(tmp_path.iterdir())


def test_worker_call_with_a_large_weight_param_leaves_nothing_behind():
    adapter = load_adapter("torch")
    if adapter.available():
        pytest.skip(adapter.available())
    w = Worker(adapter.target, timeout=300)
    rng = np.random.default_rng(0)
    h = rng.standard_normal((4, 64), dtype=np.float32)
    weight = rng.standard_normal((1 << 13, 64), dtype=np.float32)  # 2 MiB: travels as a file
    labels = np.array([0, 5, 9, 1 << 12])
    value, grads, _ = w.call("linear_cross_entropy", "float32", h, labels, {"linear_weight": weight,
                                                                            "reduction": "sum"})
    logits = h.astype(np.float64) @ weight.T.astype(np.float64)
    top = logits.max(axis=1)
    lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
    assert abs(float(value) - float(np.sum(lse - logits[np.arange(4), labels]))) < 1e-3 * abs(float(value))
    assert grads[1].shape == weight.shape and not list(w.shared.iterdir())
    w.close()


def test_worker_call_shares_both_ways_and_leaves_nothing_behind():
    adapter = load_adapter("torch")
    if adapter.available():
        pytest.skip(adapter.available())
    w = Worker(adapter.target, timeout=300)
    x = np.linspace(-3, 3, 1 << 19).astype(np.float32).reshape(-1, 8)  # 2 MiB: over the threshold
    value, grad, _ = w.call("sigmoid", "float32", x, None, {"reduction": "none"})
    assert value.shape == grad.shape == x.shape and np.isfinite(value).all()
    small_value, small_grad, _ = w.call("sigmoid", "float32", x[:4], None, {"reduction": "none"})  # pickled
    assert np.array_equal(value[:4], small_value) and np.array_equal(grad[:4], small_grad)
    directory = w.shared
    assert directory is not None and directory.is_dir() and not list(directory.iterdir())
    w.close()
    assert not directory.exists()


def test_shared_directory_is_private_in_memory_and_sweeps_those_of_killed_runs():
    first = shared_directory()
    dead = first.with_name("lossconf-999999999-leftover")  # no such process
    dead.mkdir()
    (dead / "x.bin").write_bytes(b"0" * 16)
    second = shared_directory()
    try:
        assert first.is_dir() and second.is_dir() and first != second and not dead.exists()
        assert str(first).startswith("/dev/shm") or not worker.os.access("/dev/shm", worker.os.W_OK)
    finally:
        first.rmdir()
        second.rmdir()


def test_a_request_without_a_directory_gets_arrays_back_through_the_pipe():
    adapter = load_adapter("torch")
    if adapter.available():
        pytest.skip(adapter.available())
    w = Worker(adapter.target, timeout=300)
    try:
        x = np.linspace(-3, 3, 1 << 19).astype(np.float32).reshape(-1, 8)
        value, grad, _ = w.request(("call", "sigmoid", "float32", x, None, {"reduction": "none"}))
        assert isinstance(value, np.ndarray) and value.shape == x.shape and w.shared is None
    finally:
        w.close()
