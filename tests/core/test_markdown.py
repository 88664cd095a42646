from medmax_review.core.markdown import render_markdown


def test_markdown_renders_headings_lists_and_emphasis():
    html = render_markdown("# Rules\n\n- Reject **wrong laterality**\n  when swapped\n- Use `edit`\n\nPlain *text*.")
    assert "<h2>Rules</h2>" in html
    assert "<li>Reject <strong>wrong laterality</strong>\nwhen swapped</li>" in html
    assert "<li>Use <code>edit</code></li>\n</ul>" in html
    assert "<p>Plain <em>text</em>.</p>" in html


def test_markdown_escapes_html_and_drops_script():
    html = render_markdown('<script>alert(1)</script>\n\n- <img src=x onerror="alert(1)">\n\n'
                           '[x](javascript:alert(1)) [ok](https://example.org)')
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript' not in html
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">ok</a>' in html


def test_markdown_numbered_and_nested_lists():
    html = render_markdown("3. three\n4. four\n   - inner\n     1. deep")
    assert html.startswith('<ol start="3">\n<li>three</li>\n<li>four\n<ul>\n<li>inner\n<ol>')
    assert "<li>deep</li>" in html


def test_markdown_fenced_code_and_tables():
    html = render_markdown(
        "```\n<b>not bold</b>\n```\n\n| finding | action |\n| --- | :-: |\n| left/right swapped | reject |"
    )
    assert "<pre><code>&lt;b&gt;not bold&lt;/b&gt;\n</code></pre>" in html
    assert "<table>" in html and "<th>finding</th>" in html
    assert '<td style="text-align:center">reject</td>' in html
