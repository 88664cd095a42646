import pytest

from medmax_review.core import medmax
from medmax_review.generation.prompts import (
    DEFAULT_TEMPLATES,
    OutputError,
    TemplateError,
    output_parse,
    template_fields,
    template_render,
)


@pytest.mark.parametrize("text", [
    "{question.__class__}",
    "{question.__class__.__init__.__globals__}",
    "{caption[0]}",
    "{0}",
    "{}",
    "{secret_key}",
    "{question!r}",
    "{question:>1000000}",
])
def test_safe_formatter_refuses(text):
    with pytest.raises(TemplateError):
        template_render(text, {"question": "Is it?"})


def test_safe_formatter_fills_allowed_fields_and_drops_empty_lines():
    text = "Q: {question}\nMention: {inline_mention}\nLiteral {{braces}}"
    assert template_render(text, {"question": "Which lung?", "inline_mention": ""}) == (
        "Q: Which lung?\nLiteral {braces}"
    )


def test_safe_formatter_record_text_is_not_reinterpreted():
    # a caption that itself contains braces is data, not a format string
    assert template_render("C: {caption}", {"caption": "{question.__class__}"}) == (
        "C: {question.__class__}"
    )


def test_template_fields_names_the_line():
    with pytest.raises(TemplateError, match="line 3"):
        template_fields("a\nb {question}\nc {report.upper}")


@pytest.mark.parametrize("task", medmax.TASKS)
def test_default_templates_are_valid_and_ask_for_json(task):
    names = template_fields(DEFAULT_TEMPLATES[task])
    assert names
    rendered = template_render(DEFAULT_TEMPLATES[task], {n: "x" for n in names})
    assert '{"instruction": "...", "response": "..."}' in rendered


@pytest.mark.parametrize(("text", "finish", "reason"), [
    ('{"instruction": "a", "response": "b"', "length", "truncated"),
    ("not json at all", "stop", "not valid JSON"),
    ('["instruction", "response"]', "stop", "not an object"),
    ('{"instruction": "a"}', "stop", "lacks the key"),
    ('{"instruction": "", "response": "b"}', "stop", "empty instruction"),
    ('{"instruction": "a", "response": ""}', "stop", "empty response"),
    ("", "stop", "empty output"),
    ('{"instruction": "a", "response": "I\'m sorry, I cannot help with that."}', "stop", "refused"),
    ('{"instruction": "a", "response": 3}', "stop", "must be strings"),
    ('{"instruction": "<image>a", "response": "b"}', "stop", "in the instruction"),
])
def test_output_parse_rejects_whole(text, finish, reason):
    with pytest.raises(OutputError, match=reason):
        output_parse(task=medmax.VQA, text=text, finish_reason=finish)


def test_output_parse_multimodal_needs_one_image():
    with pytest.raises(OutputError, match="exactly once"):
        output_parse(task=medmax.MULTIMODAL_GENERATION,
                     text='{"instruction": "show", "response": "text only"}', finish_reason="stop")
    assert output_parse(
        task=medmax.MULTIMODAL_GENERATION,
        text='{"instruction": "Show a CT.", "response": "Here: <image> a CT."}', finish_reason="stop",
    ) == ("Show a CT.", "Here: <image> a CT.")
