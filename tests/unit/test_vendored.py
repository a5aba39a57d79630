"""Vendored files are exactly the ones their README names: same set, same sha256."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = [ROOT / "src" / "tsgate" / "ui" / "static" / "vendor", ROOT / "tests" / "e2e" / "vendor"]
ROW = re.compile(
    r"^\| `(?P<file>[^`]+)` \| (?P<package>[^|]+?) \| [^|]+ \| `(?P<sha>[0-9a-f]{64})` \|"
)
NOT_CODE = (".md", ".LICENSE", ".NOTICE", ".LICENSE-d3")


def _listed(folder: Path) -> dict[str, str]:
    rows = (ROW.match(line) for line in (folder / "README.md").read_text().splitlines())
    return {m["file"]: m["sha"] for m in rows if m}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.relative_to(ROOT).as_posix())
def test_every_vendored_file_is_listed_with_its_sha256(folder: Path) -> None:
    listed = _listed(folder)
    assert listed, "the README lists no file"
    code = {p.name for p in folder.iterdir() if not p.name.endswith(NOT_CODE)}
    assert code == set(listed), "vendored files and the README's rows differ"
    for name, sha in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == sha, name


def test_each_row_names_a_package_version() -> None:
    for folder in FOLDERS:
        for line in (folder / "README.md").read_text().splitlines():
            if m := ROW.match(line):
                assert re.search(r"\d+\.\d+\.\d+$", m["package"]), line
