"""Truths on disk, keyed by content: a warm run evaluates no reference value it has evaluated before.

The key is a hash of everything a truth depends on: the loss, the inputs exactly as cast to the
dtype under test (bytes, shape, dtype), the parameters, the variant, and the reference itself (the
source of ``lossconf.reference``, NumPy's version and the machine), so a changed reference never
reads an old truth. Entries live under ``$XDG_CACHE_HOME/lossconf/truths`` (``~/.cache`` by
default; ``LOSSCONF_TRUTH_CACHE`` overrides, ``off`` disables). Two runs may share the directory:
each entry is written to a temporary file and renamed into place (atomic), and a torn or unreadable
entry is treated as missing. The directory is bounded (``LOSSCONF_TRUTH_CACHE_MB``, default 4096;
the torch and JAX default runs alone fill 1.2 GB, so a 1 GiB bound evicted truths every run): past the
bound, least recently used entries go first.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import platform
import tempfile
from pathlib import Path

import numpy as np

from lossconf.caches import cache_directory, trim_directory

# larger truths (--scale large, half-gigabyte arrays) are cheaper to recompute than to store; the default
# run's largest (linear CE, 32768 x 128 weight gradient in long double: 96 MiB) takes 7 s to evaluate
MAX_ENTRY_BYTES = 128 << 20


@functools.cache
def reference_fingerprint() -> bytes:
    """What the reference's results depend on besides the inputs: its source, NumPy, the machine."""
    import lossconf.reference as ref

    h = hashlib.sha256(f"{np.__version__}|{platform.machine()}|{np.finfo(np.longdouble).nmant}".encode())
    for path in sorted(Path(ref.__file__).parent.rglob("*.py")):
        h.update(path.read_bytes())
    return h.digest()


def content_key(loss: str, dtype: str, variant: str | None, first: np.ndarray, second: np.ndarray | None,
                params: dict) -> str:
    """Hex digest identifying one reference evaluation by content."""
    h = hashlib.sha256(reference_fingerprint())
    h.update(f"{loss}|{dtype}|{variant}".encode())
    for name, a in (("first", first), ("second", second), *sorted(params.items())):
        if isinstance(a, np.ndarray):
            h.update(f"{name}={a.dtype.name}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)  # bfloat16 has no buffer format
        else:
            h.update(f"{name}={a!r}".encode())
    return h.hexdigest()


def default_directory() -> Path | None:
    """The cache directory, or None when disabled (``LOSSCONF_TRUTH_CACHE=off``)."""
    setting = os.environ.get("LOSSCONF_TRUTH_CACHE", "")
    if setting.lower() in ("off", "0", "no"):
        return None
    if setting:
        return Path(setting)
    return cache_directory("truths")


class TruthCache:
    """A directory of truths (tuples of arrays), one file per content key."""

    def __init__(self, directory: Path | None, max_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes if max_bytes is not None else int(
            os.environ.get("LOSSCONF_TRUTH_CACHE_MB", "4096")) << 20
        self.hits = self.misses = self.stored = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.pkl"

    def get(self, key: str) -> tuple | None:
        """The stored truth, or None (missing, torn or unreadable)."""
        if self.directory is None:
            return None
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                value = pickle.load(f)  # noqa: S301 - our own cache directory, written by put()
            os.utime(path)  # least recently used goes first when the directory is trimmed
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: tuple) -> None:
        """Store atomically (temporary file, then rename); entries past MAX_ENTRY_BYTES are not stored."""
        if self.directory is None or sum(a.nbytes for a in value if a is not None) > MAX_ENTRY_BYTES:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=5)
            os.replace(tmp, path)
            self.stored += 1
        except OSError:  # a full or read-only disk costs speed, never a result
            return

    def trim(self) -> int:
        """Delete least recently used entries until the directory is within its bound; bytes freed."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        return trim_directory(self.directory, self.max_bytes)
