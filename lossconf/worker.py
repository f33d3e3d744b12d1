"""The worker process: one per framework, so a crash, hang or memory blow-up stays inside it.

The worker imports its adapter (and so its framework) and answers requests over a pipe:

- ``("describe",)`` -> the adapter's table (with each Impl's source) and its environment;
- ``("plan", cases, dtypes)`` -> why each (impl, case, dtype) is unsupported, where it is;
- ``("call", impl, dtype, first, second, params[, mode])`` -> (value, grad, seconds) or the exception
  text; ``mode`` (default: the adapter's first) is one of ``Adapter.modes``;
- ``("exec", "module:function", args)`` -> ``function(adapter, *args)``: lets tests run
  framework-specific code in the worker, so the test process never imports a framework.

The parent (``lossconf.runner.Worker``) enforces timeouts and restarts a dead worker.
"""

from __future__ import annotations

import importlib
import inspect
import multiprocessing as mp
import os
import signal
import time
import traceback
import warnings
from multiprocessing.connection import Connection
from typing import Any

from lossconf.adapters.loading import load_adapter


def _describe(adapter) -> dict:
    impls = []
    for impl in adapter.implementations():
        d = impl.describe()
        try:
            d["source"] = inspect.getsource(impl.fn)
        except (OSError, TypeError):
            d["source"] = ""
        impls.append(d)
    env = adapter.environment()
    base = {k: env.pop(k, "") for k in ("framework", "version", "device")}
    base["target"] = adapter.target
    base["flags"] = {k: str(v) for k, v in env.items()}
    base["flags"]["flushes_subnormals"] = ",".join(adapter.flush_dtypes()) or "no"
    base["modes"] = list(adapter.modes)
    return {"name": adapter.name, "target": adapter.target, "implementations": impls, "environment": base,
            "flushes_subnormals": adapter.flushes_subnormals, "flush_dtypes": list(adapter.flush_dtypes()),
            "workers": adapter.workers, "modes": list(adapter.modes),
            "bounded_modes": list(adapter.bounded_modes)}


def _plan(adapter, cases: list[dict], dtypes: list[str]) -> dict:
    reasons: dict[str, dict[str, str]] = {}
    for impl in adapter.implementations():
        for case in cases:
            if case["loss"] != impl.loss:
                continue
            for dtype in dtypes:
                second = case["second_shape"]
                why = impl.unsupported_reason(dtype, case["params"], tuple(case["shape"]),
                                              None if second is None else tuple(second))
                if why:
                    reasons.setdefault(impl.name, {})[f"{case['id']}|{dtype}"] = why
    return reasons


def serve(target: str, conn: Connection) -> None:
    """Worker main loop: load the adapter, then answer requests until the pipe closes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Ctrl-C reaches the whole process group; the parent decides what it means (it kills workers).
    # Without this an interrupted call would come back as the adapter's "KeyboardInterrupt" error.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("ignore")  # frameworks warn about the very edge cases we feed them on purpose
    try:
        adapter = load_adapter(target)
        adapter.load()
        impls = {i.name: i for i in adapter.implementations()}
    except BaseException as exc:  # report, then exit: the parent records the reason
        conn.send(("error", f"loading adapter failed: {exc!r}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        kind = request[0]
        try:
            if kind == "describe":
                reply: Any = _describe(adapter)
            elif kind == "plan":
                reply = _plan(adapter, request[1], request[2])
            elif kind == "call":
                _, impl_name, dtype, first, second, params, *mode = request
                # a single-mode adapter is called without a mode (third-party adapters predating modes)
                mode = adapter.mode_of(mode[0] if mode else "")
                mode = (mode,) if len(adapter.modes) > 1 else ()
                start = time.perf_counter()
                value, grad = adapter.value_and_grad(_impl(impls, impl_name), first, second, params, dtype, *mode)
                reply = (value, grad, time.perf_counter() - start)
            elif kind == "exec":
                module, _, func = request[1].partition(":")
                reply = getattr(importlib.import_module(module), func)(adapter, *request[2])
            else:
                raise ValueError(f"unknown request {kind!r}")
            conn.send(("ok", reply))
        except BaseException as exc:  # the adapter's error becomes the check's message
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            conn.send(("error", detail[-2000:]))


def _impl(impls: dict, name: str):
    """The Impl called ``name`` (KeyError message names the known ones)."""
    try:
        return impls[name]
    except KeyError:
        raise KeyError(f"no implementation {name!r}; have {sorted(impls)}") from None


def start(target: str) -> tuple[mp.Process, Connection]:
    """Spawn a fresh worker process for ``target`` (spawn: nothing inherited from the parent)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(target, child), daemon=True, name=f"lossconf-{target}")
    proc.start()
    child.close()
    return proc, parent
