"""A report as a PDF: matplotlib `PdfPages` with text pages (monospaced sections laid out over A4 pages)
and a page per figure."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from runkit.formatting import fmt_value
from runkit.reports.figures import matplotlib_module, new_figure
from runkit.reports.model import Block, Figure, KeyValues, Paragraph, Preformatted, Report, Table

PAGE = (8.27, 11.69)  # A4 portrait, inches
LINES_PER_PAGE = 70
WRAP = 100

TextSection = tuple[str, Sequence[str]]


def wrap_lines(lines: Iterable[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        line = line.expandtabs(4).rstrip()
        out.extend(textwrap.wrap(line, WRAP, subsequent_indent="    ", drop_whitespace=False) or [""])
    return out


# Widow and orphan control: a section split over two pages leaves at least this many lines on each.
MIN_LINES = 6

Line = tuple[str, bool]  # (text, is a heading)


def layout_lines(sections: Sequence[TextSection]) -> list[list[Line]]:
    """Sections of text as pages of lines. A section that fits on a page is never split (it moves to the
    next page instead); a longer one is split with at least MIN_LINES lines on either side of the break, its
    heading repeated (`... (continued)`). So no page holds a stray line or two."""
    pages: list[list[Line]] = [[]]

    def room() -> int:
        return LINES_PER_PAGE - len(pages[-1])

    for heading, body in sections:
        block: list[Line] = [(heading, True), *((line, False) for line in wrap_lines(body))]
        gap = 1 if pages[-1] else 0
        if len(block) + gap <= room():
            pages[-1].extend([("", False)] * gap + block)
            continue
        if pages[-1] and (len(block) <= LINES_PER_PAGE or room() - gap < MIN_LINES + 1):
            pages.append([])
        elif gap:
            pages[-1].append(("", False))
        while block:
            take = min(room(), len(block))
            if 0 < len(block) - take < MIN_LINES:
                take = max(len(block) - MIN_LINES, 1)
            pages[-1].extend(block[:take])
            block = block[take:]
            if block:
                pages.append([])
                block.insert(0, (f"{heading} (continued)", True))
    return [page for page in pages if page] or [[]]


def text_pages(title: str, sections: Sequence[TextSection]) -> list[Any]:
    """Sections of monospaced text laid out over as many A4 pages as they need (`layout_lines`)."""
    pages = []
    for page in layout_lines(sections):
        fig = new_figure(PAGE)
        fig.set_layout_engine(None)
        fig.text(0.06, 0.965, title, fontsize=13, weight="bold", parse_math=False)
        y = 0.935
        for text, bold in page:
            fig.text(
                0.06,
                y,
                text,
                fontsize=9 if bold else 7.5,
                family="sans-serif" if bold else "monospace",
                weight="bold" if bold else "normal",
                parse_math=False,
            )
            y -= 0.0128
        pages.append(fig)
    return pages


def table_lines(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A plain-text table with aligned columns (for the PDF's monospaced pages)."""
    cells = [[fmt_value(c) for c in columns]] + [[fmt_value(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def kv_lines(items: dict[str, Any]) -> list[str]:
    if not items:
        return ["(not recorded)"]
    width = min(max(len(str(k)) for k in items), 28)
    return [f"{str(k):<{width}}  {fmt_value(v)}" for k, v in items.items()]


def block_lines(block: Block) -> list[str]:
    """A text block as lines (a figure has none: it gets a page of its own)."""
    if isinstance(block, KeyValues):
        return kv_lines(block.items)
    if isinstance(block, Table):
        return table_lines(block.columns, block.rows)
    if isinstance(block, (Preformatted, Paragraph)):
        return block.text.splitlines()
    return []


def pdf_pages(report: Report) -> list[Any]:
    """The report's pages: its sections' text flows over text pages; each figure gets a page, after the text
    before it, at the next section that starts a new page (or at the end)."""
    pages: list[Any] = []
    text: list[TextSection] = [(report.header_heading, kv_lines(report.header))]
    figures: list[Any] = []

    def flush() -> None:
        if text:
            pages.extend(text_pages(report.title, text))
        pages.extend(figures)
        text.clear()
        figures.clear()

    for section in report.sections:
        if not section.in_pdf:
            continue
        if section.page_break:
            flush()
        lines = [line for block in section.blocks for line in block_lines(block)]
        if lines or not any(isinstance(b, Figure) for b in section.blocks):
            text.append((section.heading, lines))
        figures.extend(b.figure for b in section.blocks if isinstance(b, Figure))
    flush()
    return pages


def write_pdf(report: Report, path: Path) -> Path:
    matplotlib = matplotlib_module()
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pages = pdf_pages(report)
    # TrueType fonts (42) keep the text extractable and searchable.
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        for fig in pages:
            pdf.savefig(fig)
        info = pdf.infodict()
        info["Title"] = report.title
        info["Creator"] = "runs report"
    return path
