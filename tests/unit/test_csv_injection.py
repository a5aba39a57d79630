"""CSV exports never hand a spreadsheet a formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from tsgate.core.model import Series
from tsgate.jobs.exports import CsvWriter


@pytest.mark.parametrize(
    ("name", "cell"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("ses/site/ahu-1/temp", "ses/site/ahu-1/temp"),
        ('a"b=c', 'a"b=c'),
    ],
)
def test_point_names_that_would_be_formulas_are_text(name: str, cell: str) -> None:
    out = io.BytesIO()
    writer = CsvWriter(out)
    writer.add(Series(name, np.array([0, 1000], dtype=np.int64), np.array([-1.5, np.nan])))
    rows = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))
    assert rows[0] == ["time", "time_ms", "point", "value"]
    assert [r[2] for r in rows[1:]] == [cell, cell]
    assert [r[3] for r in rows[1:]] == ["-1.5", ""]  # numbers stay numbers
