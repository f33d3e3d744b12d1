"""The CI template ``.github/workflows/conformance.yml`` passes a real workflow linter (actionlint).

actionlint type-checks expressions against the matrix, runs shellcheck on ``run:`` scripts when
shellcheck is installed, and checks action inputs. The test skips, saying why, only when no actionlint
binary can run here; a deliberately broken copy proves the linter is really checking.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "conformance.yml"


@pytest.fixture(scope="module")
def actionlint() -> str:
    path = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if path is None:
        pytest.skip("no actionlint binary: pip install -e '.[test]' installs one (see pyproject.toml)")
    try:
        subprocess.run([path, "-version"], capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"the actionlint binary {path} cannot run here: {exc}")
    return path


def _lint(actionlint: str, workflow: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint, "-no-color", str(workflow)], capture_output=True, text=True, timeout=120)


def test_workflow_is_valid(actionlint):
    proc = _lint(actionlint, WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_runs_shards_and_merges_them():
    text = WORKFLOW.read_text(encoding="utf-8")
    shards = text.split("shard: [", 1)[1].split("]", 1)[0]
    n = len(shards.split(","))
    assert f'--shard "$SHARD/{n}"' in text, "the --shard argument must name as many shards as the matrix runs"
    assert "lossconf merge shards/*/results.json" in text and "lossconf render" in text
    assert "torch==2.13.0+cpu" in text and "-c ci-constraints.txt" in text  # CPU torch through constraints
    assert "# - framework: torch" in text and "LOSSCONF_DEVICE" in text  # the commented GPU entry


def test_linter_catches_a_broken_workflow(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("matrix.build.runner", "matrix.build.runer"),
                      encoding="utf-8")
    proc = _lint(actionlint, broken)
    assert proc.returncode == 1 and 'property "runer" is not defined' in proc.stdout
