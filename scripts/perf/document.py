"""A report as a list of blocks, rendered twice: Markdown and one self-contained HTML page (plots inlined).

A block is ("h1" | "h2" | "h3" | "p" | "pre", text), ("table", headers, rows) or ("img", path, alt).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

Block = tuple[Any, ...]

CSS = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1.2rem;font-size:13px}
th,td{border:1px solid #ccc;padding:.25rem .55rem;text-align:left}th{background:#f2f2f2}
td.PASS{background:#e3f6e3;font-weight:600}td.FAIL{background:#fbe0e0;font-weight:600}td.INFO{background:#eef}
img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:.6rem;overflow:auto}
"""


def markdown(blocks: list[Block]) -> str:
    def cells(row: list[Any]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |"

    out = []
    for kind, *rest in blocks:
        if kind in {"h1", "h2", "h3"}:
            out.append(f"{'#' * int(kind[1])} {rest[0]}\n")
        elif kind == "p":
            out.append(f"{rest[0]}\n")
        elif kind == "pre":
            out.append(f"```\n{rest[0]}\n```\n")
        elif kind == "img":
            out.append(f"![{rest[1]}]({rest[0].as_posix()})\n")
        elif kind == "table":
            headers, rows = rest
            out.append("\n".join([cells(headers), "|" + "---|" * len(headers), *(cells(row) for row in rows)]) + "\n")
    return "\n".join(out)


def page(blocks: list[Block], *, title: str, base: Path) -> str:
    """HTML; images are read from `base` and inlined, so the page is one file."""
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    out.append(f"<style>{CSS}</style></head><body>")
    for kind, *rest in blocks:
        if kind in {"h1", "h2", "h3", "p", "pre"}:
            out.append(f"<{kind}>{html.escape(rest[0])}</{kind}>")
        elif kind == "img":
            data = base64.b64encode((base / rest[0]).read_bytes()).decode()
            out.append(f"<p><img alt='{html.escape(rest[1])}' src='data:image/png;base64,{data}'></p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in rest[0])
            body = "".join(
                "<tr>" + "".join(f"<td class='{html.escape(str(c))}'>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in rest[1]
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out)
