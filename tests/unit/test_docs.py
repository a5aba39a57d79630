"""The design and style notes the code cites exist: every "DESIGN §N" and "STYLE §N"
in the sources names a section of ``docs/design.md`` or ``docs/style.md``."""

from __future__ import annotations

import itertools
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


def test_the_architecture_picture_draws_the_layers_contract_in_order() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (layers,) = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    ]
    text = (ROOT / "docs" / "architecture.md").read_text()
    picture = text[text.index("```") : text.index("```", text.index("```") + 3)]
    spans = []
    for layer in layers:
        at = []
        for name in (part.strip() for part in layer.split("|")):
            drawn_as = f"{name}/" if (ROOT / "src" / "tsgate" / name).is_dir() else f"{name}.py"
            drawn = re.search(rf"(?<![\w/.]){re.escape(drawn_as)}", picture)
            assert drawn, f"{name} is not in the picture"
            at.append(drawn.start())
        spans.append((layer, min(at), max(at)))
    # every module of a higher layer is drawn before every module of the next one down
    for (upper, _, upper_last), (lower, lower_first, _) in itertools.pairwise(spans):
        assert upper_last < lower_first, f"{upper} is not drawn above {lower}"


_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s]+?\.md)(?:#([\w-]+))?\)")


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as dashes."""
    heads = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_relative_links_between_the_docs_name_files_and_headings_that_exist() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for m in _LINK.finditer(page.read_text()):
            target = (page.parent / m[1]).resolve()
            if not target.is_file():
                broken.append(f"{page.name}: {m[1]}")
            elif m[2] and m[2] not in _anchors(target.read_text()):
                broken.append(f"{page.name}: {m[1]}#{m[2]}")
    assert not broken
