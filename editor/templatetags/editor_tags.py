"""Template helpers shared by every page."""

from django import template
from django.conf import settings

from bgremover.engine.preprocess import SUPPORTED_ACCEPT, SUPPORTED_FOR_PEOPLE

register = template.Library()


@register.simple_tag
def retention_hours() -> int:
    """How long uploads and results are kept, for the notice on every page."""
    return settings.RETENTION_HOURS


@register.simple_tag
def retention_policy() -> str:
    """When uploads are deleted, as a phrase: "deleted automatically 24 hours after upload"."""
    if settings.RETENTION_HOURS > 0:
        return f"deleted automatically {settings.RETENTION_HOURS} hours after upload"
    return f"deleted {settings.RETENTION_IDLE_MINUTES} minutes after you leave"


@register.simple_tag
def supported_formats() -> str:
    """The formats uploads may be in, for people: the decoder's own list, the one its "Not a
    supported image format" message names ("JPEG, PNG, …, HEIC/HEIF, AVIF")."""
    return SUPPORTED_FOR_PEOPLE


@register.simple_tag
def accepted_file_types() -> str:
    """A file input's accept= for the same formats (MIME types and extensions)."""
    return SUPPORTED_ACCEPT
