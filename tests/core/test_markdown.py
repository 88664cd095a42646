from medmax_review.core.markdown import render_markdown


def test_markdown_renders_headings_lists_and_emphasis():
    html = render_markdown("# Rules\n\n- Reject **wrong laterality**\n  when swapped\n- Use `edit`\n\nPlain *text*.")
    assert "<h2>Rules</h2>" in html
    assert "<ul>\n<li>Reject <strong>wrong laterality</strong> when swapped</li>" in html
    assert "<li>Use <code>edit</code></li>\n</ul>" in html
    assert "<p>Plain <em>text</em>.</p>" in html


def test_markdown_escapes_html_and_drops_script():
    html = render_markdown('<script>alert(1)</script>\n\n- <img src=x onerror="alert(1)">')
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "onerror=&quot;alert(1)&quot;" in html


def test_markdown_numbered_list():
    assert render_markdown("1. one\n2. two") == "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"
