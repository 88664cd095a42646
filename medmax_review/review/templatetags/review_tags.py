"""The review pane's score panel and marked texts, computed where the pane is rendered."""

from django import template

from medmax_review.review.score_panel import review_scores

register = template.Library()


@register.simple_tag
def score_panel_for(candidate):
    """{scores, instruction_segments, response_segments} for `candidate` (score_panel.py)."""
    return review_scores(candidate)
