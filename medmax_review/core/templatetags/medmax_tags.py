from django import template

from medmax_review.core.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(value: str):
    """Render guidelines Markdown safely (escaped first; see core.markdown)."""
    return render_markdown(value or "")
