"""``run --shard i/n``: the n shards of a run are disjoint, cover it, and merge into exactly the unsharded run.

The runs are real (torch in its worker process); the pytest process never imports torch.
"""

from __future__ import annotations

import pytest

from lossconf.cli import main
from lossconf.results import merge
from lossconf.shard import parse_shard, shard_of

SELECTION = dict(adapters=("torch",), losses=("softmax_cross_entropy", "sigmoid_cross_entropy", "log_softmax"),
                 dtypes=("float32", "bfloat16"), seed=3, budget=8)
PER_RUN = ("seconds",)  # the only per-check field allowed to differ between two runs of the same check


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""])
def test_bad_shard_is_a_usage_error(text, tmp_path, capsys):
    assert main(["run", "--adapters", "torch", f"--shard={text}", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--shard: expected i/n with 1 <= i <= n" in err and repr(text) in err


def test_parse_and_partition_are_stable():
    assert parse_shard("2/5") == (2, 5) and parse_shard(" 1 / 1 ") == (1, 1)
    # sha256, not the per-process salted hash(): these values hold on every machine
    assert [shard_of(f"torch|cross_entropy|float32|case{k}", 4) for k in range(6)] == [
        shard_of(f"torch|cross_entropy|float32|case{k}", 4) for k in range(6)
    ]
    keys = [f"jax|softmax|float16|rand_{k}" for k in range(400)]
    counts = [sum(shard_of(k, 3) == i for k in keys) for i in (1, 2, 3)]
    assert sum(counts) == 400 and min(counts) > 100  # every shard gets a fair part


def _strip(check: dict) -> dict:
    return {k: v for k, v in check.items() if k not in PER_RUN}


@pytest.fixture(scope="module")
def runs(real_run):
    whole = real_run(**SELECTION)
    shards = [real_run(shard=(i, 3), **SELECTION) for i in (1, 2, 3)]
    return whole, shards


def test_shards_partition_the_run(runs):
    whole, shards = runs
    ids = [{c["id"] for c in s["checks"]} for s in shards]
    assert all(ids), "a shard of this selection is empty: the partition does not spread"
    assert sum(len(i) for i in ids) == len(set().union(*ids)), "shards overlap"
    assert set().union(*ids) == {c["id"] for c in whole["checks"]}
    # a case's value and gradient come from one framework call: they never land in different shards
    shard_of_check = {cid: i for i, part in enumerate(ids) for cid in part}
    for cid, i in shard_of_check.items():
        stem, quantity = cid.rsplit("-", 1)
        twin = f"{stem}-{'grad' if quantity == 'value' else 'value'}"
        assert shard_of_check.get(twin, i) == i, cid


def test_merged_shards_equal_the_unsharded_run(runs):
    whole, shards = runs
    merged = merge(shards)
    assert merged["merge"]["conflicts"] == [] and "missing_shards" not in merged["merge"]
    assert merged["complete"] and "shard" not in merged["config"]
    assert merged["config"] == whole["config"]
    assert merged["summary"] == whole["summary"]
    a = {c["id"]: _strip(c) for c in whole["checks"]}
    b = {c["id"]: _strip(c) for c in merged["checks"]}
    assert a.keys() == b.keys()
    different = [cid for cid in a if a[cid] != b[cid]]
    assert not different, f"{len(different)} checks differ, e.g. {different[:3]}"


def test_a_merge_missing_a_shard_is_incomplete(runs):
    _, shards = runs
    merged = merge(shards[:2])
    assert not merged["complete"]
    assert len(merged["merge"]["missing_shards"]) == 1 and "shard 3/3 of torch@" in merged["merge"]["missing_shards"][0]
