"""Known deviations: registered, evidenced framework bugs or limitations (``known/<adapter>.toml``).

A known deviation turns a ``fail`` into ``known`` for the checks it matches, only while the
framework version is inside its range. An entry describes its mechanism, not the cases it was seen
on, so that it holds for every seed: a ``model`` (a computation in ``lossconf.known_models`` that
reproduces the deviating result; the check is known only when the result agrees with the model
within the error-model bound), ``inputs`` conditions computed from the case, and ``when``
conditions on the result. Case ids are allowed only for document and edge cases, whose inputs are
fixed; a random case id would tie the entry to one seed. A file is one adapter's (its stem), or one
library's shared by several adapters (``SHARED``: ``keras.toml`` holds what Keras 3 does on every
backend, written once and matched for each Keras adapter, its ``versions`` Keras's own). Each run
reports per entry whether it still reproduces: ``reproduced`` (some matched check deviates), ``stale``
(it matched checks but none deviates any more: the upstream bug is probably fixed) or ``unused``
(it matched nothing in this run).
"""

from __future__ import annotations

import fnmatch
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from lossconf.known_models import INPUTS, MODELS

KNOWN_DIR = Path(__file__).with_name("known")
_REQUIRED = ("id", "impl", "quantity", "versions", "link", "description")
WHEN = {
    "subnormal_truth": "the truth at the worst element is below the dtype's smallest normal number",
    "nonfinite_input": "the case's inputs contain NaN or +-inf",
    "nonfinite_result": "the result at the worst element is NaN or +-inf",
    "nan_result": "the result at the worst element is NaN",
    "error": "the call raised or returned the wrong shape/dtype",
    "marginal": "the error is at most twice the bound (an accuracy shortfall, not a wrong formula)",
    "zero_result_tiny_truth": "the result at the worst element is 0 where the truth is below twice the "
                              "dtype's smallest normal number",
}
FIXED_CASE_PREFIXES = ("edge_", "doc", "inv_")  # case kinds whose inputs do not depend on the seed
# a library run by several adapters: its file's entries hold for each of them, versions are the library's
SHARED = {"keras": ("tensorflow", "keras_jax", "keras_torch")}


@dataclass(frozen=True)
class Known:
    """One registered deviation of one implementation."""

    id: str
    adapter: str
    impl: str
    quantity: str  # "value" | "grad" | "grad_<param>" (a further gradient) | "both"
    versions: str  # PEP 440 specifier on the framework version
    link: str
    description: str
    dtypes: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()
    when: tuple[str, ...] = ()  # conditions on the check itself, all must hold (see WHEN)
    inputs: tuple[str, ...] = ()  # conditions on the case's inputs, all must hold (known_models.INPUTS)
    model: str = ""  # a computation the result must agree with (known_models.MODELS)

    modes: tuple[str, ...] = ()  # execution modes it occurs in (empty: every mode)
    package: str = ""  # whose version ``versions`` is (a SHARED library's; empty: the adapter's own)

    def matches(self, adapter: str, impl: str, quantity: str, dtype: str, case: str, version: str | Mapping,
                facts: frozenset[str] | None = frozenset(), mode: str = "") -> bool:
        """Whether this entry covers the check (and the framework version is in range).

        ``version`` is the adapter's version or its environment record (where an entry of a shared
        library finds that library's version). ``facts`` are what is true of the check and its inputs
        (``lossconf.verdicts.check_facts``); every ``when`` and ``inputs`` condition of the entry must
        be among them (``None``: the conditions are not looked at). The ``model`` is checked by the
        caller, which has the arrays.
        """
        if adapter != self.adapter or self.impl not in ("*", impl):  # "*": every implementation
            return False
        if facts is not None and not set(self.when) | set(self.inputs) <= facts:
            return False
        if self.quantity not in ("both", quantity):
            return False
        if self.dtypes and dtype not in self.dtypes:
            return False
        if self.modes and mode not in self.modes:
            return False
        if self.cases and not any(fnmatch.fnmatchcase(case, p) for p in self.cases):
            return False
        return self.covers(version)

    def covers(self, version: str | Mapping) -> bool:
        """Whether the framework version is inside the registered ``versions`` range (local part ignored)."""
        if isinstance(version, Mapping):  # an adapter's environment: its version; a library's among its flags
            env = version
            version = str(env.get("flags", {}).get(self.package, "") if self.package else env.get("version", ""))
        try:
            return Version(version.split("+")[0]) in SpecifierSet(self.versions)
        except InvalidVersion:
            return False

    @classmethod
    def from_description(cls, d: dict) -> Known:
        """The entry back from its ``describe()`` form (as stored in results.json)."""
        fields = ("id", "adapter", "impl", "quantity", "versions", "link", "description")
        return cls(**{f: d[f] for f in fields}, dtypes=tuple(d.get("dtypes", ())), cases=tuple(d.get("cases", ())),
                   when=tuple(d.get("when", ())), inputs=tuple(d.get("inputs", ())), model=d.get("model") or "",
                   modes=tuple(d.get("modes", ())), package=d.get("package") or "")

    def describe(self) -> dict:
        """JSON-ready form for results.json."""
        return {
            "id": self.id, "adapter": self.adapter, "impl": self.impl, "quantity": self.quantity,
            "dtypes": list(self.dtypes), "cases": list(self.cases), "when": list(self.when),
            "inputs": list(self.inputs), "model": self.model,
            "modes": list(self.modes), "versions": self.versions, "package": self.package,
            "link": self.link, "description": self.description,
        }


def load_known_file(path: Path, adapter: str | None = None) -> list[Known]:
    """The known deviations in one TOML file; ``adapter`` defaults to each entry's or the file stem.

    A SHARED library's file (``keras.toml``) gives each entry once per adapter that runs the library,
    with the same id, versions being the library's.
    """
    path = Path(path)
    if adapter is None and path.stem in SHARED:
        return [replace(k, package=path.stem) for name in SHARED[path.stem] for k in load_known_file(path, name)]
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = []
    for raw in data.get("known", []):
        missing = [k for k in _REQUIRED if not raw.get(k)]
        if missing:
            raise ValueError(f"{path.name}: known deviation {raw.get('id')!r} lacks {missing}")
        if raw["quantity"] not in ("value", "grad", "both") and not raw["quantity"].startswith("grad_"):
            raise ValueError(f"{path.name}: {raw['id']}: quantity must be value, grad, grad_<input> or both")
        SpecifierSet(raw["versions"])  # raises on a malformed range
        _validate_mechanism(path.name, raw)
        modes = _modes(path, raw, adapter or raw.get("adapter", path.stem))
        entries.append(
            Known(
                id=raw["id"], adapter=adapter or raw.get("adapter", path.stem), impl=raw["impl"],
                quantity=raw["quantity"], versions=raw["versions"], link=raw["link"],
                description=raw["description"], dtypes=tuple(raw.get("dtypes", ())),
                cases=tuple(raw.get("cases", ())), when=tuple(raw.get("when", ())),
                inputs=tuple(raw.get("inputs", ())), model=raw.get("model", ""),
                modes=modes,
            )
        )
    return entries


def _validate_mechanism(file: str, raw: dict) -> None:
    """Conditions and model name known, case patterns only of fixed (document and edge) cases."""
    where = f"{file}: {raw['id']}"
    for key, names in (("when", WHEN), ("inputs", INPUTS)):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}: '{key}' must be a list of names from {sorted(names)}")
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(f"{where}: unknown '{key}' {sorted(unknown)}; expected some of {sorted(names)}")
    model = raw.get("model", "")
    if not isinstance(model, str) or (model and model not in MODELS):
        raise ValueError(f"{where}: unknown 'model' {model!r}; expected one of {sorted(MODELS)}")
    cases = raw.get("cases", [])
    if not isinstance(cases, list) or not all(isinstance(c, str) for c in cases):
        raise ValueError(f"{where}: 'cases' must be a list of case ids or patterns")
    seeded = [c for c in cases if not c.startswith(FIXED_CASE_PREFIXES)]
    if seeded:
        raise ValueError(f"{where}: 'cases' may name only document and edge cases (ids starting with "
                         f"{' or '.join(FIXED_CASE_PREFIXES)}), got {seeded}: describe a random case's "
                         f"deviation by a model or an input condition, which hold for every seed")


def _modes(path: Path, raw: dict, adapter: str) -> tuple[str, ...]:
    """The entry's ``modes``: a list of the (built-in) adapter's declared modes, or absent (every mode)."""
    modes = raw.get("modes", [])
    if not isinstance(modes, list) or not all(isinstance(m, str) and m for m in modes):
        raise ValueError(f"{path.name}: {raw['id']}: modes must be a list of mode names, got {modes!r}")
    if not modes:  # loading the adapter scans every installed distribution's entry points: 18 ms an entry
        return ()
    from lossconf.adapters.loading import BUILTIN, load_adapter

    declared = load_adapter(adapter).modes if adapter in BUILTIN else None
    unknown = [m for m in modes if declared is not None and m not in declared]
    if unknown:
        raise ValueError(f"{path.name}: {raw['id']}: unknown modes {unknown}; {adapter} declares {list(declared)}")
    return tuple(modes)


def load_known(directory: Path = KNOWN_DIR) -> list[Known]:
    """Every known deviation in ``directory/*.toml`` (the file stem is the adapter or SHARED library name)."""
    files = [load_known_file(path) for path in sorted(directory.glob("*.toml"))]
    # a shared file's entry is one id on several adapters: count each file's ids on its first adapter
    ids = [k.id for file in files for k in file if k.adapter == file[0].adapter]
    if len(ids) != len(set(ids)):
        raise ValueError(f"known deviations: duplicate ids in {directory}")
    return [k for file in files for k in file]


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
