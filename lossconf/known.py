"""Known deviations: registered, evidenced framework bugs or limitations (``known/<adapter>.toml``).

A known deviation turns a ``fail`` into ``known`` for the checks it matches, only while the
framework version is inside its range. Each run reports per entry whether it still reproduces:
``reproduced`` (some matched check deviates), ``stale`` (it matched checks but none deviates any
more: the upstream bug is probably fixed) or ``unused`` (it matched nothing in this run).
"""

from __future__ import annotations

import fnmatch
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

KNOWN_DIR = Path(__file__).with_name("known")
_REQUIRED = ("id", "impl", "quantity", "versions", "link", "description")
WHEN = {
    "subnormal_truth": "the truth at the worst element is below the dtype's smallest normal number",
    "nonfinite_input": "the case's inputs contain NaN or +-inf",
    "nonfinite_result": "the result at the worst element is NaN or +-inf",
    "nan_result": "the result at the worst element is NaN",
    "error": "the call raised or returned the wrong shape/dtype",
    "marginal": "the error is at most twice the bound (an accuracy shortfall, not a wrong formula)",
}


@dataclass(frozen=True)
class Known:
    """One registered deviation of one implementation."""

    id: str
    adapter: str
    impl: str
    quantity: str  # "value" | "grad" | "both"
    versions: str  # PEP 440 specifier on the framework version
    link: str
    description: str
    dtypes: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()
    when: tuple[str, ...] = ()  # conditions on the check itself, all must hold (see WHEN)
    modes: tuple[str, ...] = ()  # execution modes it occurs in (empty: every mode)

    def matches(self, adapter: str, impl: str, quantity: str, dtype: str, case: str, version: str,
                facts: frozenset[str] = frozenset(), mode: str = "") -> bool:
        """Whether this entry covers the check (and the framework version is in range).

        ``facts`` are what is true of the check (``lossconf.verdicts.check_facts``); every ``when``
        condition of the entry must be among them.
        """
        if adapter != self.adapter or impl != self.impl:
            return False
        if not set(self.when) <= facts:
            return False
        if self.quantity not in ("both", quantity):
            return False
        if self.dtypes and dtype not in self.dtypes:
            return False
        if self.modes and mode not in self.modes:
            return False
        if self.cases and not any(fnmatch.fnmatchcase(case, p) for p in self.cases):
            return False
        try:
            return Version(version.split("+")[0]) in SpecifierSet(self.versions)
        except InvalidVersion:
            return False

    def describe(self) -> dict:
        """JSON-ready form for results.json."""
        return {
            "id": self.id, "adapter": self.adapter, "impl": self.impl, "quantity": self.quantity,
            "dtypes": list(self.dtypes), "cases": list(self.cases), "when": list(self.when),
            "modes": list(self.modes), "versions": self.versions,
            "link": self.link, "description": self.description,
        }


def load_known_file(path: Path, adapter: str | None = None) -> list[Known]:
    """The known deviations in one TOML file; ``adapter`` defaults to each entry's or the file stem."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    entries = []
    for raw in data.get("known", []):
        missing = [k for k in _REQUIRED if not raw.get(k)]
        if missing:
            raise ValueError(f"{path.name}: known deviation {raw.get('id')!r} lacks {missing}")
        if raw["quantity"] not in ("value", "grad", "both"):
            raise ValueError(f"{path.name}: {raw['id']}: quantity must be value, grad or both")
        SpecifierSet(raw["versions"])  # raises on a malformed range
        unknown = set(raw.get("when", ())) - set(WHEN)
        if unknown:
            raise ValueError(f"{path.name}: {raw['id']}: unknown 'when' {sorted(unknown)}; expected {sorted(WHEN)}")
        modes = _modes(path, raw, adapter or raw.get("adapter", path.stem))
        entries.append(
            Known(
                id=raw["id"], adapter=adapter or raw.get("adapter", path.stem), impl=raw["impl"],
                quantity=raw["quantity"], versions=raw["versions"], link=raw["link"],
                description=raw["description"], dtypes=tuple(raw.get("dtypes", ())),
                cases=tuple(raw.get("cases", ())), when=tuple(raw.get("when", ())), modes=modes,
            )
        )
    return entries


def _modes(path: Path, raw: dict, adapter: str) -> tuple[str, ...]:
    """The entry's ``modes``: a list of the (built-in) adapter's declared modes, or absent (every mode)."""
    modes = raw.get("modes", [])
    if not isinstance(modes, list) or not all(isinstance(m, str) and m for m in modes):
        raise ValueError(f"{path.name}: {raw['id']}: modes must be a list of mode names, got {modes!r}")
    from lossconf.adapters.loading import BUILTIN, load_adapter

    declared = load_adapter(adapter).modes if adapter in BUILTIN else None
    unknown = [m for m in modes if declared is not None and m not in declared]
    if unknown:
        raise ValueError(f"{path.name}: {raw['id']}: unknown modes {unknown}; {adapter} declares {list(declared)}")
    return tuple(modes)


def load_known(directory: Path = KNOWN_DIR) -> list[Known]:
    """Every known deviation in ``directory/*.toml`` (the file stem is the adapter name)."""
    entries = [k for path in sorted(directory.glob("*.toml")) for k in load_known_file(path)]
    ids = [k.id for k in entries]
    if len(ids) != len(set(ids)):
        raise ValueError(f"known deviations: duplicate ids in {directory}")
    return entries


def adapter_known(adapter) -> list[Known]:
    """A third-party adapter's own known deviations: its ``known_deviations`` TOML file (a path
    relative to the adapter's module), bound to the adapter's name."""
    path = getattr(adapter, "known_deviations", "")
    if not path:
        return []
    path = Path(path)
    if not path.is_absolute():
        path = Path(sys.modules[type(adapter).__module__].__file__).parent / path
    if not path.is_file():
        raise ValueError(f"adapter {adapter.name!r}: known_deviations file {str(path)!r} does not exist")
    return load_known_file(path, adapter=adapter.name)
