"""A report's content, built once and rendered twice: as HTML (reports.html) and as a PDF (reports.pdf).

A report is a title, a header (key/value facts) and sections; a section holds blocks: key/value lists,
tables, preformatted text, paragraphs and figures (matplotlib figures, drawn by reports.figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KeyValues:
    """Facts as `key  value` lines (HTML: a two-column table)."""

    items: dict[str, Any]


@dataclass(frozen=True)
class Table:
    """Rows under column headers; `numeric` columns are right-aligned in HTML."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    numeric: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Preformatted:
    """Text shown as it is: config.yaml, a traceback, the overrides."""

    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str
    muted: bool = False


@dataclass(frozen=True)
class Figure:
    """A matplotlib figure: a PNG image in the HTML, a page of its own in the PDF."""

    figure: Any
    alt: str


Block = KeyValues | Table | Preformatted | Paragraph | Figure


@dataclass
class Section:
    """A heading and its blocks. `in_pdf=False`: HTML only. `page_break`: in the PDF, this section starts a
    new page, after the figures of the sections before it."""

    heading: str
    blocks: list[Block] = field(default_factory=list)
    in_pdf: bool = True
    page_break: bool = False


@dataclass
class Report:
    """One report: `stem` names its files (report-<id>.html / .pdf)."""

    title: str
    stem: str
    header_heading: str  # the header's heading in the PDF ("Run", "Sweep"); the HTML shows it under the title
    header: dict[str, Any]
    sections: list[Section] = field(default_factory=list)
