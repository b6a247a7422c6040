"""Template helpers shared by every page."""

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def retention_hours() -> int:
    """How long uploads and results are kept, for the notice on every page."""
    return settings.RETENTION_HOURS
