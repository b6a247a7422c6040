"""The gallery's batch download: POST /images/zip/ → a ZIP streamed while it is built."""

from __future__ import annotations

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST

from editor.batch import BatchSelectionForm, BatchSettingsForm, BatchZip
from editor.ownership import current_owner
from editor.ratelimit import ADDRESS, OWNER, configured_rate, limit
from editor.views import json_error


@require_POST
def zip_download(request: HttpRequest) -> HttpResponse:
    """The selected ``image`` ids rendered with the posted RenderForm fields, one ZIP entry
    each. Each image counts as one download against the downloads rate limit."""
    owner = current_owner(request)
    selection = BatchSelectionForm(request.POST, owner)
    if not selection.is_valid():
        return json_error(selection.first_error())
    choice = BatchSettingsForm(request.POST)
    if not choice.is_valid():
        return json_error(choice.first_error())
    count = len(selection.images)
    # One that would never fit (per browser or per address) is told so, not "try later".
    rates = [configured_rate("downloads", OWNER), configured_rate("downloads", ADDRESS)]
    rate = min((r for r in rates if r is not None), key=lambda r: r.count, default=None)
    if rate is not None and count > rate.count:
        return json_error(
            f"A ZIP of {count} images counts as {count} downloads, more than the limit of "
            f"{rate}: select at most {rate.count}.",
        )
    refused = limit(request, "downloads", units=count)
    if refused is not None:
        return refused
    assert owner is not None  # the selection found images of this owner
    batch = BatchZip(
        owner, selection.images, choice.cleaned_data, selection.cleaned_data["use_saved"]
    )
    # Under ASGI an async iterator streams; a sync one would be read whole first.
    parts = batch.aparts() if isinstance(request, ASGIRequest) else batch.parts()
    response = StreamingHttpResponse(parts, content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(True, batch.filename())
    response["Cache-Control"] = "private, no-store"
    response["X-Batch-Count"] = str(count)
    response["X-Accel-Buffering"] = "no"  # nginx: pass each entry on as it comes
    return response
