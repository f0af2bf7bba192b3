"""Snapshots, reset and resume naming without a running stack: a snapshot round-trips the
state folder, and a corrupt, foreign or mismatched file is refused with nothing changed."""

from __future__ import annotations

import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from streamflow_local import persistence, resume, snapshot
from streamflow_local.config import PROJECT_ROOT, StackConfig

README = (PROJECT_ROOT / "README.md").read_text()


def _state(root: Path, marker: str) -> StackConfig:
    config = StackConfig(aws_port=1, mlflow_port=2, api_port=3, state_dir=root, stack_name="sfsnap")
    (root / "aws" / "blobs").mkdir(parents=True)
    services = {"moto.s3.models:S3Backend": {"file": "s3-1.pickle", "bytes": 5, "blobs": ["abc"]}}
    (root / "aws" / "index.json").write_text(json.dumps({"format": 1, "services": services, "marker": marker}))
    (root / "aws" / "s3-1.pickle").write_bytes(marker.encode())
    (root / "aws" / "s3-0.pickle").write_bytes(b"an older generation, not in the index")
    (root / "aws" / "blobs" / "abc").write_bytes(marker.encode() * 1000)
    with sqlite3.connect(root / "mlflow.db") as db:
        db.execute("create table t (v text)")
        db.execute("insert into t values (?)", (marker,))
    (root / "stack.json").write_text(json.dumps({"api": {"api_key": marker}}))
    (root / "logs").mkdir()
    (root / "logs" / "stack.log").write_text(marker)
    (root / "data").mkdir()
    (root / "data" / "keep.csv").write_text("input")
    return config


def _contents(root: Path) -> dict[str, bytes]:
    out = {}
    for entry in snapshot.STATE_ENTRIES:
        path = root / entry
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []
        for file in files:
            if file.name == "mlflow.db":
                with sqlite3.connect(file) as db:
                    out[entry] = repr(db.execute("select v from t").fetchall()).encode()
            else:
                out[file.relative_to(root).as_posix()] = file.read_bytes()
    return out


@pytest.mark.parametrize("name", ["state.tar", "state.tar.gz"])
def test_save_then_load_into_another_folder_gives_the_same_state(tmp_path, name):
    source = _state(tmp_path / "a", "alpha")
    manifest = snapshot.save(source, tmp_path / name)
    assert manifest["format"] == snapshot.FORMAT and manifest["format_version"] == snapshot.FORMAT_VERSION
    assert {item["path"] for item in manifest["contents"]} >= {"aws/index.json", "aws/blobs/abc", "mlflow.db",
                                                              "stack.json", "logs/stack.log"}
    assert not any(item["path"].startswith("data/") for item in manifest["contents"])

    assert "aws/s3-0.pickle" not in {item["path"] for item in manifest["contents"]}  # only the index's files

    target = _state(tmp_path / "b", "beta")
    loaded = snapshot.load(target, tmp_path / name)
    assert "aws" in loaded.replaced
    (tmp_path / "a" / "aws" / "s3-0.pickle").unlink()
    assert _contents(tmp_path / "b") == _contents(tmp_path / "a")
    assert (tmp_path / "b" / "data" / "keep.csv").read_text() == "input"  # inputs are not state


def _rewrite(source: Path, target: Path, edit) -> None:
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read()
            member, data = edit(member, data)
            import io

            member.size = len(data)
            new.addfile(member, io.BytesIO(data))


def test_corrupt_foreign_and_mismatched_files_are_refused_and_change_nothing(tmp_path):
    good = tmp_path / "good.tar"
    snapshot.save(_state(tmp_path / "a", "alpha"), good)
    config = _state(tmp_path / "b", "beta")
    before = _contents(tmp_path / "b")

    flipped = tmp_path / "flipped.tar"
    _rewrite(good, flipped, lambda m, d: (m, d[:-1] + b"X" if m.name == "aws/blobs/abc" else d))
    other_moto = tmp_path / "moto.tar"

    def old_moto(member, data):
        if member.name == snapshot.MANIFEST:
            data = json.dumps({**json.loads(data), "moto": "4.0.0"}).encode()
        return member, data

    _rewrite(good, other_moto, old_moto)
    newer = tmp_path / "newer.tar"
    _rewrite(good, newer, lambda m, d: (m, json.dumps({**json.loads(d), "format_version": 99}).encode()
                                        if m.name == snapshot.MANIFEST else d))
    foreign = tmp_path / "foreign.tar"
    (tmp_path / "x.txt").write_text("hello")
    with tarfile.open(foreign, "w") as archive:
        archive.add(tmp_path / "x.txt", arcname="x.txt")
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b" + b"not gzip at all" * 100)
    other_stack = tmp_path / "other-stack.tar"
    _rewrite(good, other_stack, lambda m, d: (m, json.dumps({**json.loads(d), "stack_name": "elsewhere"}).encode()
                                              if m.name == snapshot.MANIFEST else d))

    for path, says in ((flipped, "corrupt"), (other_moto, "moto 4.0.0"), (newer, "format version 99"),
                       (foreign, "not a StreamFlow snapshot"), (truncated, ""), (garbage, "not a readable snapshot"),
                       (other_stack, "STREAMFLOW_STACK_NAME=elsewhere"), (tmp_path / "missing.tar", "")):
        with pytest.raises(snapshot.SnapshotError) as caught:
            snapshot.load(config, path)
        assert says in str(caught.value)
        assert _contents(tmp_path / "b") == before, path


def test_load_refuses_while_the_stack_runs(tmp_path, monkeypatch):
    import os

    config = _state(tmp_path / "b", "beta")
    good = tmp_path / "good.tar"
    snapshot.save(_state(tmp_path / "a", "alpha"), good)
    config.pid_file.write_text(str(os.getpid()))  # "running": a live pid
    with pytest.raises(snapshot.StackRunning, match="stop it first"):
        snapshot.load(config, good)


def test_reset_says_what_it_removes_and_keeps_the_months(tmp_path):
    config = _state(tmp_path / "b", "beta")
    removed = dict(snapshot.reset(config))
    assert set(removed) == {str(tmp_path / "b" / e) for e in ("aws", "mlflow.db", "stack.json", "logs")}
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["data"]
    assert [path for path, _ in snapshot.reset(config, everything=True)] == [str(tmp_path / "b")]
    assert not (tmp_path / "b").exists()


def test_resumed_executions_keep_the_month_and_count_their_attempts():
    assert resume.original_name("month_001-0123456789abcdef_resume2") == "month_001-0123456789abcdef"
    assert resume.attempt("month_001-0123456789abcdef_resume2") == 2
    assert resume.attempt("month_001-0123456789abcdef") == 0
    assert resume.month_of("month_001-0123456789abcdef_resume1") == "month_001"
    rows = [{"name": "month_001-aa", "interrupted": True}, {"name": "month_002-bb", "interrupted": True},
            {"name": "month_002-bb_resume1", "interrupted": False}]
    assert resume.latest_interrupted(rows) == ["month_001"]
    assert resume.is_interrupted({"status": "ABORTED", "error": persistence.INTERRUPTED_ERROR})
    assert not resume.is_interrupted({"status": "ABORTED"})


def test_the_readme_states_the_persistence_facts_the_code_has():
    # How checkpoints work is in docs/architecture.md; what survives what in README.md.
    docs = README + (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    assert persistence.CHECKPOINT_SECONDS == 0.5 and "every 0.5 s" in docs
    assert persistence.SPACING == 4.0 and "max(0.5 s, 4 t) + t" in docs
    assert persistence.JOURNALED == {"dynamodb"} and "`aws/dynamodb-journal-*.jsonl`" in docs
    assert f"error `{persistence.INTERRUPTED_ERROR}`" in docs
    assert f"`{snapshot.MANIFEST}`" in docs
    assert "`<execution>_resume1`" in docs
    for entry in ("aws/", "mlflow.db", "stack.json", "import-guard/", "logs/"):
        assert f"`{entry}" in docs
    assert persistence.PERSIST_ENV + "=0" in docs


def test_a_redeploy_keeps_what_the_loop_set_on_a_function():
    from streamflow.served_model import CHAMPION_ENV
    from streamflow_local.deploy import RUNTIME_VARIABLES

    assert CHAMPION_ENV in RUNTIME_VARIABLES


def test_an_input_from_before_the_digests_moved_to_s3_is_resumed_with_their_key():
    """An execution interrupted before ingest wrote the verified digests to S3 carries them
    inline; ShardMonth reads ``$.files_key``, so the resumed run gets the key instead."""
    written = []

    def put_verified(month, execution, files):
        written.append((month, execution, files))
        return f"verified/{month}/{execution}.json"

    old = json.dumps({"month": "month_004", "execution": "month_004-0123456789abcdef",
                      "files": {"users.csv": "ab" * 32}, "threshold": 0.3})
    upgraded = json.loads(resume.with_files_key(old, put_verified))
    assert upgraded == {"month": "month_004", "execution": "month_004-0123456789abcdef", "threshold": 0.3,
                        "files_key": "verified/month_004/month_004-0123456789abcdef.json"}
    assert written == [("month_004", "month_004-0123456789abcdef", {"users.csv": "ab" * 32})]
    current = json.dumps({"month": "month_005", "execution": "e", "files_key": "verified/month_005/e.json"})
    assert resume.with_files_key(current, put_verified) == current and len(written) == 1
