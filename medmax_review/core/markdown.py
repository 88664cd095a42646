"""Project guidelines Markdown: CommonMark with tables, rendered by markdown-it-py and then
sanitised by nh3 (Ammonia), so an admin's guidelines cannot put script into a reviewer's page.

Raw HTML in the source is shown as text, not interpreted; headings move one level down so a
guideline's "#" sits under the page's own title; links keep only http(s) and mailto targets.
"""

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "strong", "em", "code", "pre",
    "blockquote", "hr", "br", "a", "table", "thead", "tbody", "tr", "th", "td", "del",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}


def _heading_down(self, tokens, idx, options, env):
    token = tokens[idx]
    level = min(int(token.tag[1]) + 1, 6)
    return f"<{'/' if token.nesting < 0 else ''}h{level}>" + ("\n" if token.nesting < 0 else "")


_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
_md.add_render_rule("heading_open", _heading_down)
_md.add_render_rule("heading_close", _heading_down)


def render_markdown(source: str) -> SafeString:
    html = _md.render(source or "")
    clean = nh3.clean(
        html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )
    return mark_safe(clean.strip())  # noqa: S308 - sanitised by nh3 just above
