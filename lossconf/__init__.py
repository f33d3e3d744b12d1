"""lossconf: does framework X compute loss L correctly, and how close is it to the truth?"""

import os
from pathlib import Path

__version__ = "0.1.0"


def cache_directory(name: str) -> Path:
    """``$XDG_CACHE_HOME/lossconf/<name>`` (``~/.cache`` by default): what a run keeps for later runs."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lossconf" / name
