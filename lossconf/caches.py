"""Where runs keep what later runs reuse (truths, compiled programs, sweep environments), and its bound."""

from __future__ import annotations

import os
from pathlib import Path

COMPILE_CACHE_BYTES = 1 << 30  # a framework's compiled programs (a default report's: TF 25-75 MB, JAX ~600 MB)


def cache_directory(name: str) -> Path:
    """``$XDG_CACHE_HOME/lossconf/<name>`` (``~/.cache`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lossconf" / name


def trim_directory(directory: Path, max_bytes: int) -> int:
    """Delete the least recently modified files under ``directory`` until it holds at most ``max_bytes``;
    bytes freed. A file another process removes first, or cannot be removed, is skipped."""
    entries = []
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    freed = 0
    for _, size, path in sorted(entries):
        if total - freed <= max_bytes:
            break
        try:
            os.unlink(path)
            freed += size
        except OSError:
            pass
    return freed
