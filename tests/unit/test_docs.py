"""The documents name only what is there: files, `streamflow` commands, `make` targets.

A file or module that moves, a subcommand renamed, a Makefile target dropped: each leaves a
document that points at nothing. These tests read the READMEs and docs/architecture.md and
check every such name against the tree, the CLI's parser and the Makefile.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamflow_local.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/architecture.md", "infra/README.md", "bench/README.md"]
# Written by runs, git-ignored: named in the docs, not in a fresh clone.
GENERATED = ("bench/results/", "build/", ".local-stack/", ".venv", ".aws-sam/")
SOURCE_DIRS = ("functions", "layers", "infra", "bench", "tests")


def spans(text: str) -> list[str]:
    """What the document quotes as code: `inline` spans and the lines of fenced blocks."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return re.findall(r"`([^`\n]+)`", prose) + [line for block in fenced for line in block.splitlines()]


def path_like(span: str, base: Path = ROOT) -> Path | None:
    """The repository path a quoted span names, from the root or from the document's folder
    (``base``), or None when it is no such path (URLs, S3 keys, placeholders, commands,
    paths of the running stack)."""
    span = span.strip()
    if " " in span or any(c in span for c in "<>*{}$|…:=@") or span.startswith(GENERATED):
        return None
    top = span.split("/", 1)[0]
    if "/" not in span or not top:
        return None
    for folder in (ROOT, base):
        if (folder / top).exists():
            return folder / span.rstrip("/")
    return None


def source_file_names() -> set[str]:
    return {p.name for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py")}


def named_commands(text: str, program: str) -> set[str]:
    found = set()
    for span in spans(text):
        # not Python's ``from streamflow import x``: that names a package, not a command
        found |= set(re.findall(rf"(?<![\w./-])(?<!from ){program} ([a-z][a-z-]*)", span))
        found |= set(re.findall(rf"\.venv/bin/{program} ([a-z][a-z-]*)", span))
    return found


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def cli_commands() -> set[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    return set(subparsers.choices)


@pytest.mark.parametrize("doc", DOCS)
def test_every_repository_path_a_document_names_exists(doc):
    text = (ROOT / doc).read_text()
    paths = {path_like(span, (ROOT / doc).parent) for span in spans(text)} - {None}
    missing = sorted(str(p.relative_to(ROOT)) for p in paths if not p.exists())
    assert not missing, f"{doc} names paths that are not in the repository: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_python_file_a_document_names_exists(doc):
    """A bare ``module.py`` (``moto_patches.py``, ``scorer.py``) must be a file of the tree."""
    names = {s.strip() for s in spans((ROOT / doc).read_text()) if re.fullmatch(r"\s*[\w]+\.py\s*", s)}
    missing = sorted(names - source_file_names())
    assert not missing, f"{doc} names Python files that are not in the repository: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_streamflow_command_a_document_names_exists(doc):
    named = named_commands((ROOT / doc).read_text(), "streamflow")
    unknown = sorted(named - cli_commands())
    assert not unknown, f"{doc} names `streamflow` commands the CLI does not have: {unknown}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_make_target_a_document_names_exists(doc):
    named = named_commands((ROOT / doc).read_text(), "make")
    unknown = sorted(named - make_targets())
    assert not unknown, f"{doc} names `make` targets the Makefile does not have: {unknown}"


def test_the_checks_find_what_they_check():
    readme = (ROOT / "README.md").read_text()
    architecture = (ROOT / "docs/architecture.md").read_text()
    assert {"upload", "status", "rollback", "snapshot"} <= named_commands(readme, "streamflow")
    assert {"demo", "test", "bench"} <= named_commands(readme, "make")
    assert ROOT / "infra/statemachine/pipeline.asl.json" in {path_like(s) for s in spans(architecture)}
    assert path_like("statemachine/pipeline.asl.json", ROOT / "infra") == ROOT / "infra/statemachine/pipeline.asl.json"
    assert not path_like("layers/core/streamflow/champion.py").exists()
    assert path_like("s3://bucket/months/") is None and path_like(".local-stack/stack.json") is None


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a document's headings: lower case, punctuation dropped, spaces → -."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS)
def test_every_link_a_document_makes_reaches_a_file_and_a_heading(doc):
    base = (ROOT / doc).parent
    broken = []
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", (ROOT / doc).read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path = (base / target) if target else ROOT / doc
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path.read_text())):
            broken.append(f"{target}#{anchor}" if anchor else target)
    assert not broken, f"{doc} links to what is not there: {broken}"


def headings(doc: str) -> list[str]:
    text = re.sub(r"^```.*?^```", "", (ROOT / doc).read_text(), flags=re.S | re.M)
    return [h.strip() for h in re.findall(r"^#+ (.+)$", text, re.M)]


def test_every_readme_section_the_code_cites_exists():
    """Comments and docstrings cite sections as ``README "Package size"`` or
    ``bench/README.md, "4. Scale"``: each must start a heading of that README."""
    cited = []
    files = [p for d in (*SOURCE_DIRS, ".github") for p in (ROOT / d).rglob("*") if p.is_file()
             and (p.suffix in (".py", ".yml", ".yaml", ".txt", ".toml") or p.name == "Dockerfile")]
    files += [ROOT / "template.yaml", ROOT / "Makefile", ROOT / "requirements.txt"]
    for path in files:
        if ".venv" in path.parts or "results" in path.parts or path == Path(__file__).resolve():
            continue
        text = path.read_text(errors="replace")
        cited += [(path, "README.md", h) for h in re.findall(r'(?<![/\w])README "([^"]+)"', text)]
        cited += [(path, "bench/README.md", h) for h in re.findall(r'bench/README\.md, "([^"]+)"', text)]
    assert len(cited) >= 5
    missing = [f"{path.relative_to(ROOT)}: {doc} \"{h}\"" for path, doc, h in cited
               if not any(heading.startswith(h) for heading in headings(doc))]
    assert not missing, f"sections cited that the READMEs do not have: {missing}"
