"""mnist_course.table: the small text and HTML tables."""

from __future__ import annotations

from mnist_course.table import html_table, text_table


def test_text_and_html_tables_align_and_escape():
    assert text_table(["a", "bb"], [["xyz", "1"], ["p", "22"]], right=(1,)).splitlines() == [
        "a    bb",
        "---  --",
        "xyz   1",
        "p    22",
    ]
    assert "&lt;b&gt;" in html_table(["x"], [["<b>"]])
    assert (
        html_table(["h"], [["c"]])
        == "<table><thead><tr><th>h</th></tr></thead><tbody><tr><td>c</td></tr></tbody></table>"
    )
