"""``lossconf sweep``: one framework across several versions, one virtual environment per version.

Each version gets a virtual environment made with uv under ``~/.cache/lossconf/sweep/<framework>-<version>``
(reused while its requirements are unchanged), holding the framework at that version and lossconf
itself (editable, from this source tree). The run happens here -- cases, reference truths and verdicts
are this interpreter's, identical for every version -- and only the adapter's worker runs in the
version's interpreter (``LOSSCONF_WORKER_PYTHON``, see ``lossconf.worker``). numpy and ml_dtypes are
pinned to this interpreter's versions: arrays cross the worker pipe pickled. The per-version results
are merged (``lossconf.results.merge`` names the adapter ``name@version``) and the report gains a trend
section (``lossconf.reports.trend``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from importlib.metadata import version as dist_version
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from lossconf.caches import cache_directory
from lossconf.runner import RunConfig
from lossconf.stream import RunError
from lossconf.worker import WORKER_PYTHON

# What one version of a framework is: its requirements, "{v}" being the version. Companion packages
# without a pin resolve to the newest release whose metadata accepts that version (optax for jax).
FRAMEWORKS: dict[str, tuple[str, ...]] = {
    "jax": ("jax[cpu]=={v}", "optax"),
    "torch": ("torch=={v}",),
    "tensorflow": ("tensorflow-cpu=={v}", "keras"),
    "paddle": ("paddlepaddle=={v}",),
}
PINNED_FROM_HERE = ("numpy", "ml_dtypes")  # must match this interpreter: pickled arrays cross the pipe
MARKER = "lossconf-sweep.json"  # written last into a venv: its requirements, so a reuse can be verified


class SweepError(RunError):
    """A sweep cannot run (bad option, uv missing, an environment that cannot be built)."""


@dataclass
class Environment:
    """One version's virtual environment."""

    framework: str
    version: str
    path: Path
    requirements: list[str]

    @property
    def python(self) -> Path:
        """Its interpreter."""
        return self.path / "bin" / "python"


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/lossconf/sweep`` (default ``~/.cache/lossconf/sweep``)."""
    return cache_directory("sweep")


def source_root() -> Path:
    """This lossconf's source tree (installed editable into each environment)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise SweepError(f"sweep installs lossconf from its source tree, but {root} has no pyproject.toml")
    return root


def parse_versions(framework: str, text: str) -> list[str]:
    """``"0.4.38,0.6.2"`` (or ``"jax==0.4.38,0.6.2"``) -> versions; SweepError naming the option."""
    if framework not in FRAMEWORKS:
        raise SweepError(f"--framework: unknown framework {framework!r}; expected one of {sorted(FRAMEWORKS)}")
    versions = [v.strip().removeprefix(f"{framework}==") for v in text.split(",") if v.strip()]
    if not versions or any(not v or not v[0].isdigit() for v in versions):
        raise SweepError(f"--versions: expected comma-separated versions like 0.4.38,0.6.2, got {text!r}")
    if len(set(versions)) != len(versions):
        raise SweepError(f"--versions: a version is listed twice in {text!r}")
    return versions


def environment_for(framework: str, version: str, extra: tuple[str, ...] = ()) -> Environment:
    """The environment a version runs in (not built yet): its folder and requirements."""
    requirements = [r.format(v=version) for r in FRAMEWORKS[framework]] + list(extra)
    for r in requirements:
        try:
            Requirement(r)
        except InvalidRequirement as exc:
            raise SweepError(f"--with/--versions: {r!r} is not a requirement ({exc})") from None
    return Environment(framework, version, cache_root() / f"{framework}-{version}", requirements)


def _uv() -> str:
    uv = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if uv is None:
        raise SweepError("sweep needs uv to build its environments: pip install 'lossconf[sweep]' (or pip install uv)")
    return uv


def build(env: Environment, constraints: Path | None = None, log=print) -> Environment:
    """Create (or reuse) the environment: uv venv on this Python, then framework + lossconf in one resolve."""
    marker = env.path / MARKER
    named = {canonicalize_name(Requirement(r).name) for r in env.requirements}
    pins = [f"{name}=={dist_version(name)}" for name in PINNED_FROM_HERE if canonicalize_name(name) not in named]
    wanted = {"requirements": env.requirements, "pins": pins, "python": sys.version.split()[0],
              "constraints": constraints.read_text(encoding="utf-8") if constraints else "",
              "source": str(source_root())}  # another checkout rebuilds: the install is editable
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == wanted and env.python.exists():
        log(f"{env.framework} {env.version}: reusing {env.path}")
        return env
    uv = _uv()
    if env.path.exists():
        shutil.rmtree(env.path)
    env.path.parent.mkdir(parents=True, exist_ok=True)
    log(f"{env.framework} {env.version}: building {env.path} ({', '.join(env.requirements)})")
    _uv_run(env, [uv, "venv", "--quiet", "--python", sys.executable, str(env.path)])
    pin_file = env.path / "lossconf-pins.txt"
    pin_file.write_text("".join(p + "\n" for p in pins), encoding="utf-8")
    _uv_run(env, [uv, "pip", "install", "--quiet", "--python", str(env.python), "-c", str(pin_file),
                  *(["-c", str(constraints)] if constraints else []), "-e", str(source_root()), *env.requirements])
    marker.write_text(json.dumps(wanted, indent=1), encoding="utf-8")
    return env


def _uv_run(env: Environment, command: list[str]) -> None:
    """Run one uv command; on failure remove the half-built environment and raise with uv's last lines."""
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode:
        shutil.rmtree(env.path, ignore_errors=True)
        detail = "\n  ".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
        raise SweepError(f"{env.framework} {env.version}: {' '.join(command[:3])} failed:\n  {detail}")


def run_version(env: Environment, config: RunConfig, execute) -> dict:
    """Run ``config`` with the adapter's worker in ``env``'s interpreter; ``execute(config)`` runs it."""
    previous = os.environ.get(WORKER_PYTHON)
    os.environ[WORKER_PYTHON] = str(env.python)
    try:
        return execute(replace(config, out=Path(config.out) / f"{env.framework}-{env.version}"))
    finally:
        if previous is None:
            os.environ.pop(WORKER_PYTHON, None)
        else:
            os.environ[WORKER_PYTHON] = previous


def combine(framework: str, versions: list[str], results: list[dict]) -> dict:
    """Merge the per-version results; ``sweep`` records the framework and the versions in order."""
    from lossconf.results import merge

    merged = merge(results)
    merged["sweep"] = {"framework": framework, "versions": versions}
    return merged
