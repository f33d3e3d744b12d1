"""Parent side of the worker processes: one handle per adapter's worker, with timeouts and restart.

The worker side is ``lossconf.worker``; a call that raises, hangs past its timeout or kills the
worker becomes a ``WorkerFailure`` here, and the next request starts a fresh worker.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from lossconf import worker


class WorkerFailure(Exception):
    """The worker did not answer: it raised (``kind='error'``), timed out, or died."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Worker:
    """Parent-side handle of one adapter's worker process, with timeouts and restart."""

    def __init__(self, target: str, timeout: float, start_timeout: float = 300.0, log: Path | None = None) -> None:
        self.target, self.timeout, self.start_timeout = target, timeout, start_timeout
        self.log = log  # where the worker's own output goes (None: the terminal)
        self.log_mark = 0  # the log's size when the request in flight was sent: what a dying worker said follows
        self.proc = self.conn = None
        self.shared: Path | None = None  # where large arrays cross to and from the worker
        self.sent_at = 0.0  # when the call in flight was sent

    def call(self, impl: str, dtype: str, first: np.ndarray, second: np.ndarray | None, params: dict,
             mode: str = "") -> tuple:
        """One framework call: (value, grad, seconds); large arrays go through shared memory both ways."""
        return self.collect(self.submit(impl, dtype, first, second, params, mode))

    def submit(self, impl: str, dtype: str, first: np.ndarray, second: np.ndarray | None, params: dict,
               mode: str = "") -> tuple:
        """Send one framework call without waiting for it (``collect`` reads its reply), so the caller
        can judge the previous call while the worker computes this one."""
        if self.shared is None:
            self.shared = worker.shared_directory()
        message = ("call", impl, dtype, worker.share(first, self.shared), worker.share(second, self.shared),
                   worker.share(params, self.shared), str(self.shared), mode)
        try:
            self._send(message)
        except WorkerFailure:
            self._unlink_inputs(message)
            raise
        self.sent_at = time.monotonic()  # the call's timeout runs from here, not from ``collect``
        return message

    def collect(self, message: tuple) -> tuple:
        """The reply to a ``submit``ted call: (value, grad, seconds); WorkerFailure as for ``request``."""
        try:
            value, grad, seconds = self._reply(self.timeout, since=self.sent_at)
        finally:
            self._unlink_inputs(message)
        return worker.unshare(value), worker.unshare(grad), seconds

    @staticmethod
    def _unlink_inputs(message: tuple) -> None:
        for item in (*message[3:5], *message[5].values()):  # inputs and array params
            if isinstance(item, worker.Shared) and os.path.exists(item.path):  # the worker died first
                os.unlink(item.path)

    def spawn(self) -> None:
        """Start the process without waiting for it (it imports its framework meanwhile)."""
        if self.proc is None:
            self.proc, self.conn = worker.start(self.target, None if self.log is None else str(self.log))

    def start(self) -> None:
        """Spawn the process (unless ``spawn`` did) and wait until the adapter is loaded."""
        self.spawn()
        status, detail = self._receive(self.start_timeout)
        if status != "ready":
            self.close()
            raise WorkerFailure("error", detail)

    def request(self, message: tuple, timeout: float | None = None):
        """Send one request and return its reply; WorkerFailure when it raised, hung or died."""
        self._send(message)
        return self._reply(timeout or self.timeout)

    def _send(self, message: tuple) -> None:
        if self.proc is None or not self.proc.is_alive():
            self.start()
        conn = self.conn
        if conn is None:  # closed by another thread (Ctrl-C) in the meantime
            raise WorkerFailure("crash", "worker closed")
        self.log_mark = self._log_size()  # before sending: the worker may answer, or die, at once
        try:
            conn.send(message)
        except (BrokenPipeError, OSError) as exc:
            self.close()
            raise WorkerFailure("crash", f"worker died before the call: {exc!r}") from None

    def _reply(self, timeout: float, since: float | None = None):
        status, reply = self._receive(timeout, since)
        if status in ("error", "crash"):  # "crash": an isolated call died in its child; the worker lives on
            raise WorkerFailure(status, reply)
        return reply

    def _receive(self, timeout: float, since: float | None = None):
        deadline = (time.monotonic() if since is None else since) + timeout
        conn, proc = self.conn, self.proc  # close() from another thread (Ctrl-C) must not break this loop
        if conn is None or proc is None:
            raise WorkerFailure("crash", "worker closed")
        while True:
            try:
                if conn.poll(0.05):
                    return conn.recv()
            except (EOFError, OSError):
                break
            if not proc.is_alive():
                break
            if time.monotonic() > deadline:
                self.close()
                raise WorkerFailure("timeout", f"worker timed out after {timeout:.0f} s (killed and replaced)")
        proc.join(1)  # the pipe may close before the process is reaped: wait for its exit code
        code = proc.exitcode
        self.close()
        last = self._last_word()
        raise WorkerFailure("crash", f"worker process died (exit code {code}){f': {last}' if last else ''}; replaced")

    def _log_size(self) -> int:
        try:
            return 0 if self.log is None else self.log.stat().st_size
        except OSError:  # not written yet
            return 0

    def _last_word(self) -> str:
        """What the worker wrote to its log after the call in flight was sent (glibc's 'double free or
        corruption', a framework's fatal error), in brief."""
        if self._log_size() <= self.log_mark:
            return ""
        with open(self.log, "rb") as f:
            f.seek(self.log_mark)
            return worker.last_word(f.read(1 << 16).decode("utf-8", "replace"))

    def close(self) -> None:
        """Kill the process (if any) and forget it; the next request starts a fresh one."""
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
            conn.close()
        if self.shared is not None:  # arrays a killed call left behind
            shutil.rmtree(self.shared, ignore_errors=True)
            self.shared = None
