"""Interrupted runs: SIGKILL keeps a loadable partial stream that ``--resume`` completes exactly; Ctrl-C on
``lossconf report`` renders a partial report marked incomplete; the same seed gives the same results.

Every run is a real ``lossconf`` subprocess with the torch adapter (in its own process group, so a
test can signal it the way a terminal does and clean up its workers).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lossconf.results import load

ARGS = ["--adapters", "torch", "--losses", "softmax_cross_entropy,sigmoid_cross_entropy,log_softmax,sigmoid",
        "--seed", "5", "--budget", "16"]
TIMES = ("started", "finished", "timings", "truths")  # the only top-level fields allowed to differ between runs
# ("truths": how many the reference evaluated vs read from its disk cache, a cost like "timings")


def _lossconf(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "lossconf.cli", *map(str, args)]


def _run(out: Path, *extra: str) -> dict:
    proc = subprocess.run(_lossconf("run", *ARGS, "--out", out, *extra), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load(out / "results.json")


def _checks_written(stream: Path) -> int:
    try:
        return stream.read_text(encoding="utf-8").count('{"type":"check"')
    except FileNotFoundError:
        return 0


def _terminal_signals() -> None:
    """In the child before exec: SIGINT handled and unblocked, as a process a terminal starts has it. An ignored or
    blocked SIGINT survives exec, and a pytest worker's state must not decide whether Ctrl-C reaches the run (in
    the full suite this test saw a report run to completion after its SIGINT)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def _interrupt(command: list[str], out: Path, after: int, sig: int) -> tuple[int, str]:
    """Start ``command``; once ``after`` checks are on disk send ``sig`` to its process group.

    Returns the exit status and what it wrote on stderr."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_terminal_signals)
    deadline = time.monotonic() + 300
    while _checks_written(out / "results.jsonl") < after:
        assert proc.poll() is None, f"the run ended before it could be interrupted: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)
    os.killpg(proc.pid, sig)
    _, stderr = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:  # the workers outlive their parent until they notice the closed pipe
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, stderr


def _comparable(results: dict) -> dict:
    """results.json without wall-clock fields (run times, per-check seconds)."""
    out = {k: v for k, v in results.items() if k not in TIMES}
    out["checks"] = [{k: v for k, v in c.items() if k != "seconds"} for c in results["checks"]]
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    return _run(tmp_path_factory.mktemp("whole"))


def test_same_seed_gives_identical_results(tmp_path, uninterrupted):
    again = _run(tmp_path)
    assert uninterrupted["complete"] and again["complete"]
    assert _comparable(again) == _comparable(uninterrupted)


def test_sigkill_leaves_a_loadable_partial_stream_that_resume_completes(tmp_path, uninterrupted):
    total = uninterrupted["summary"]["total"]
    status, _ = _interrupt(_lossconf("run", *ARGS, "--out", tmp_path), tmp_path, total // 3, signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert not (tmp_path / "results.json").exists()
    stream = tmp_path / "results.jsonl"
    with open(stream, "a", encoding="utf-8") as f:  # as if the kill had landed in the middle of a write
        f.write('{"type":"check","check":{"id":"torch:half-writ')
    partial = load(stream)
    assert partial["complete"] is False and partial["interrupted"] is True
    assert total // 3 <= partial["summary"]["total"] < total
    whole = {c["id"]: c for c in uninterrupted["checks"]}
    for c in partial["checks"]:  # what was written before the kill is already final
        assert (c["verdict"], c["error"]) == (whole[c["id"]]["verdict"], whole[c["id"]]["error"]), c["id"]

    resumed = _run(tmp_path, "--resume")
    assert resumed["complete"]
    assert {c["id"]: (c["verdict"], c["error"], c["message"]) for c in resumed["checks"]} == {
        i: (c["verdict"], c["error"], c["message"]) for i, c in whole.items()}
    assert _comparable(resumed) == _comparable(uninterrupted)
    lines = [json.loads(line) for line in stream.read_text(encoding="utf-8").splitlines()]
    ids = [line["check"]["id"] for line in lines if line["type"] == "check"]
    assert len(ids) == len(set(ids)) == total, "a check was written twice or lost"


def test_resume_refuses_a_different_configuration(tmp_path, uninterrupted):
    _run(tmp_path)
    proc = subprocess.run(_lossconf("run", *ARGS, "--seed", "6", "--out", tmp_path, "--resume"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert "--resume" in proc.stderr and "Traceback" not in proc.stderr


def test_ctrl_c_on_report_renders_a_partial_report(tmp_path, uninterrupted):
    total = uninterrupted["summary"]["total"]
    command = _lossconf("report", *ARGS, "--out", tmp_path)
    status, stderr = _interrupt(command, tmp_path, total // 3, signal.SIGINT)
    assert status != 0
    assert "Traceback" not in stderr, stderr[-3000:]
    results = load(tmp_path / "results.json")
    assert results["complete"] is False and results["interrupted"] is True
    assert total // 3 <= results["summary"]["total"] < total
    assert "interrupted" not in json.dumps([c["message"] for c in results["checks"]]).lower()
    assert not [c for c in results["checks"] if c["verdict"] == "error"], "an interrupted call was counted as error"
    stream_ids = {json.loads(line)["check"]["id"] for line in (tmp_path / "results.jsonl").read_text().splitlines()
                  if line.startswith('{"type":"check"')}
    assert stream_ids == {c["id"] for c in results["checks"]}
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="incomplete-banner"' in html and "(interrupted)" in html
