"""A report as one self-contained HTML file: figures embedded as base64 PNG, every recorded value escaped
(run names and tags are user input), nothing fetched from anywhere."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from runkit.formatting import fmt_value
from runkit.reports.figures import png_base64
from runkit.reports.model import Block, KeyValues, Paragraph, Preformatted, Report, Table

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; border-bottom: 2px solid #446; padding-bottom: .3em; }
h2 { font-size: 1.15em; margin-top: 1.8em; color: #335; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ccd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #eef; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6fa; border: 1px solid #dde; padding: .8em; overflow-x: auto; font-size: .82em; }
img { max-width: 100%; border: 1px solid #eee; }
.status-completed { color: #185; font-weight: bold; }
.status-failed, .status-crashed { color: #b22; font-weight: bold; }
.muted { color: #777; font-size: .85em; }
"""


def esc(value: Any) -> str:
    return html.escape(fmt_value(value), quote=True)


def html_kv(items: dict[str, Any]) -> str:
    if not items:
        return '<p class="muted">not recorded</p>'
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items.items())
    return f'<table class="kv">{rows}</table>'


def html_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            attr = ' class="num"' if i in numeric else ""
            cells.append(f"<td{attr}>{esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def html_img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt, quote=True)}" src="data:image/png;base64,{b64}">'


def html_document(title: str, body: Sequence[str]) -> str:
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        + f"<title>{html.escape(title)}</title>\n"
        + "<style>"
        + CSS
        + "</style>\n</head>\n<body>\n"
    )
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    footer = f'<p class="muted">Generated {html.escape(stamp)} by the runs report command, offline.</p>\n'
    return head + "\n".join(body) + "\n" + footer + "</body>\n</html>\n"


def html_block(block: Block) -> str:
    if isinstance(block, KeyValues):
        return html_kv(block.items)
    if isinstance(block, Table):
        return html_table(block.columns, block.rows, block.numeric)
    if isinstance(block, Preformatted):
        return html_pre(block.text)
    if isinstance(block, Paragraph):
        return f'<p class="muted">{esc(block.text)}</p>' if block.muted else f"<p>{esc(block.text)}</p>"
    return html_img(png_base64(block.figure), block.alt)


def render_html(report: Report) -> str:
    """The whole report as one HTML document."""
    body = [f"<h1>{html.escape(report.title)}</h1>", html_kv(report.header)]
    for section in report.sections:
        body.append(f"<h2>{esc(section.heading)}</h2>")
        body.extend(html_block(block) for block in section.blocks)
    return html_document(report.title, body)


def write_html(report: Report, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
