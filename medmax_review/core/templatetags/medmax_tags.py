from django import template

from medmax_review.core.markdown import render_markdown

register = template.Library()


@register.filter
def markdown(value: str):
    """Render guidelines Markdown safely (escaped first; see core.markdown)."""
    return render_markdown(value or "")


@register.filter
def interval(seconds) -> str:
    """A refresh interval in words: "30 seconds", "1 minute", "4 minutes"."""
    seconds = int(seconds or 0)
    if seconds < 90:
        return f"{seconds} seconds"
    minutes = round(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
