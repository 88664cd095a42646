"""A small, safe Markdown subset for project guidelines.

Everything is HTML-escaped first; only then are tags added for headings, lists, paragraphs,
**bold**, *emphasis* and `code`. No raw HTML and no links survive, so an admin's guidelines
cannot inject script into a reviewer's page.
"""

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_HEADING = re.compile(r"^(#{1,4})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>"),
]


def _inline(text: str) -> str:
    html = escape(text)
    for pattern, repl in _INLINE:
        html = pattern.sub(repl, html)
    return html


def render_markdown(source: str) -> SafeString:
    out: list[str] = []
    paragraph: list[str] = []
    list_tag: str | None = None

    def close_paragraph():
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    def close_list():
        nonlocal list_tag
        if list_tag:
            out.append(f"</{list_tag}>")
            list_tag = None

    for line in source.splitlines():
        if not line.strip():
            close_paragraph()
            close_list()
            continue
        if heading := _HEADING.match(line):
            close_paragraph()
            close_list()
            level = len(heading.group(1)) + 1  # the page's own title is the h1
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            continue
        item = _BULLET.match(line) or _NUMBERED.match(line)
        if item:
            close_paragraph()
            tag = "ul" if _BULLET.match(line) else "ol"
            if list_tag != tag:
                close_list()
                out.append(f"<{tag}>")
                list_tag = tag
            out.append(f"<li>{_inline(item.group(1))}</li>")
            continue
        if list_tag and line.startswith((" ", "\t")) and out[-1].endswith("</li>"):
            # A continuation line of the previous list item.
            out[-1] = out[-1][: -len("</li>")] + " " + _inline(line.strip()) + "</li>"
            continue
        close_list()
        paragraph.append(line.strip())
    close_paragraph()
    close_list()
    return mark_safe("\n".join(out))  # noqa: S308 - built only from escaped text above
