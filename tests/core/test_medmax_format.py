import pytest

from medmax_review.core import medmax


def test_build_text_understanding_puts_image_before_instruction():
    text = medmax.build_text(
        instruction="Which lung is affected?", context="", response="Right",
        image_position=medmax.IMAGE_BEFORE_INSTRUCTION,
    )
    assert text == "<image>Which lung is affected?<reserved08706>Right"


def test_build_text_generation_puts_image_in_response():
    text = medmax.build_text(
        instruction="Generate a chest CT with a right lower lobe mass.", context="",
        response="", image_position=medmax.IMAGE_IN_RESPONSE,
    )
    assert text == "Generate a chest CT with a right lower lobe mass.<reserved08706><image>"


def test_build_text_keeps_context_after_instruction():
    text = medmax.build_text(
        instruction="Describe the figure.", context="Figure 2 shows a fundus photograph.",
        response="A fundus.", image_position=medmax.IMAGE_NONE,
    )
    assert text.split(medmax.SEPARATOR)[0] == "Describe the figure.\nFigure 2 shows a fundus photograph."


def test_parse_text_round_trips_build_text():
    for position in (medmax.IMAGE_BEFORE_INSTRUCTION, medmax.IMAGE_NONE):
        text = medmax.build_text(instruction="Q?", context="", response="A.", image_position=position)
        parsed = medmax.parse_text(text)
        assert (parsed.instruction, parsed.response, parsed.image_position) == ("Q?", "A.", position)


@pytest.mark.parametrize(
    "text, message",
    [
        ("no separator", "exactly one"),
        ("a<reserved08706>b<reserved08706>c", "exactly one"),
        ("<image><image>q<reserved08706>a", "at most one"),
        ("q<image>x<reserved08706>a", "start"),
    ],
)
def test_parse_text_rejects_broken_records(text, message):
    with pytest.raises(ValueError, match=message):
        medmax.parse_text(text)


def test_check_text_flags_missing_placeholder_for_an_image_record():
    assert medmax.check_text("Q?<reserved08706>A", has_image=True) == [
        "record has an image but 0 <image> placeholders"
    ]


def test_check_text_flags_over_long_text_counting_the_image():
    text = "<image>" + "word " * 1100 + "<reserved08706>answer"  # 1100 tokens + 1026 for the image
    problems = medmax.check_text(text, has_image=True)
    assert any("2048-token" in p for p in problems)
    assert medmax.check_text("<image>" + "word " * 300 + "<reserved08706>answer", has_image=True) == []


def test_check_text_accepts_generation_record_with_image_only_response():
    assert medmax.check_text("A chest CT.<reserved08706><image>", has_image=True) == []


def test_estimate_tokens_counts_1026_per_image():
    assert medmax.estimate_tokens("<image>") == medmax.IMAGE_TOKENS


@pytest.mark.parametrize(
    "text, has_image, problems",
    [
        ("<image>Q?<reserved08706>A.", True, []),
        ("Draw it.<reserved08706>Here:<image>", True, []),
        ("Q?<reserved08706>A.", False, []),
        ("<image> <reserved08706>A.", True, ["empty instruction"]),
        ("<image>Q?<reserved08706>  ", True, ["empty response"]),
        (" <reserved08706> ", False, ["empty instruction", "empty response"]),
        ("Q?<reserved08706>A.<image>", False, ["<image> placeholder but no image"]),
        ("q<image>x<reserved08706>a", True, ["<image> inside the instruction must stand at its start"]),
        ("no separator", True, ["text must contain exactly one <reserved08706> separator, found 0"]),
    ],
)
def test_check_text_names_every_rule_broken(text, has_image, problems):
    assert medmax.check_text(text, has_image=has_image) == problems


def test_parse_text_finds_the_image_in_the_response():
    parsed = medmax.parse_text("Draw it.<reserved08706>Here:<image>")
    assert parsed == medmax.ParsedText("Draw it.", "Here:<image>", medmax.IMAGE_IN_RESPONSE)
