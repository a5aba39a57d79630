"""The design and style notes the code cites exist: every "DESIGN §N" and "STYLE §N"
in the sources names a section of ``docs/design.md`` or ``docs/style.md``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"\b(DESIGN|STYLE)(?:\.md)? §(\d+)(?:[–-]§(\d+))?")


def _sections() -> dict[str, set[int]]:
    design = (ROOT / "docs" / "design.md").read_text()
    style = (ROOT / "docs" / "style.md").read_text()
    return {
        "DESIGN": {int(n) for n in re.findall(r"^## (\d+)\. ", design, re.MULTILINE)},
        "STYLE": {int(n) for n in re.findall(r"^(\d+)\. \*\*", style, re.MULTILINE)},
    }


def _citations() -> list[tuple[str, str, int]]:
    found = []
    for folder in ("src", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".js", ".md") or "vendor" in path.parts:
                continue
            for m in CITATION.finditer(path.read_text(errors="replace")):
                last = int(m[3] or m[2])
                for n in range(int(m[2]), last + 1):
                    found.append((str(path.relative_to(ROOT)), m[1], n))
    return found


def test_every_cited_section_exists() -> None:
    sections = _sections()
    assert len(sections["DESIGN"]) >= 10 and len(sections["STYLE"]) >= 15
    citations = _citations()
    assert citations, "the code cites no section (has the pattern drifted?)"
    missing = [c for c in citations if c[2] not in sections[c[1]]]
    assert missing == []


def test_the_docs_say_what_the_citations_mean() -> None:
    assert '"DESIGN §N"' in (ROOT / "docs" / "design.md").read_text()
    assert '"STYLE §N"' in (ROOT / "docs" / "style.md").read_text()
