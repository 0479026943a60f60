"""Small text/HTML tables for notebook results (chapters 5, 7 and 8)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; columns listed in ``right`` are right-aligned (chapter 5).

    Args:
        head: the column titles.
        rows: the cells, one sequence per row (converted with ``str``).
        right: indices of the right-aligned columns.

    Returns:
        str: the header, a line of dashes, then the rows; trailing spaces stripped.
    """
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(cells):
        return "  ".join(
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The same table as HTML, for Jupyter's rich display (chapter 5).

    Args:
        head: the column titles.
        rows: the cells, one sequence per row; every cell is HTML-escaped.

    Returns:
        str: a ``<table>`` with a ``<thead>`` and a ``<tbody>``.
    """
    th = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"
