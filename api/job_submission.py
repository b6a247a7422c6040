"""Submitting images to the jobs API: limits first, then every picture checked, then all of
them admitted and stored in one transaction: a submission is kept whole or not at all.

Order, cheapest refusal first: the pictures are counted (400 none or too many), the key's
rate takes them (429), the fields are checked (400; the webhook URL's host is resolved;
remove.bg's render options, kept as the defaults of the job's result downloads), each
picture is read and checked as the browser's upload is (400/413/415, naming which), the
monthly quota must cover their results at the submitted size (402), then each is admitted to
the queue and the disk budget (429/503/507, Retry-After) and stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from api.errors import ApiError
from api.job_data import request_base
from api.job_forms import CheckedImage, JobSubmitForm, check_images, render_fields, sources
from api.limits import RateState, check_quota, take
from api.models import ApiJob, ApiKey, credits_for
from api.options import RemoveBgForm
from api.request_data import read_request
from editor.models import Image
from editor.quotas import OverQuota, admit_upload
from editor.results import delete_image
from editor.uploads import store_upload


@dataclass
class Submitted:
    jobs: list[ApiJob]
    rate: RateState


def expected_credits(image: CheckedImage, options: RemoveBgForm) -> Decimal:
    """What the image's result costs with the submission's render options."""
    info = image.form.info
    assert info is not None  # checked
    return credits_for(options.output_pixels(info.width, info.height))


def _over_quota(refused: OverQuota) -> ApiError:
    if refused.status == HTTPStatus.TOO_MANY_REQUESTS:
        limit = settings.JOB_QUEUE_LIMIT_PER_OWNER
        return ApiError(
            refused.status,
            f"This key already has {limit} images waiting or being processed, the most it "
            "may have at once. Wait until some are done, then submit the rest.",
            "queue_full",
            refused.retry_after_s,
        )
    code = "storage_full" if refused.status == HTTPStatus.INSUFFICIENT_STORAGE else "server_busy"
    return ApiError(refused.status, refused.message, code, refused.retry_after_s)


def _store(
    key: ApiKey,
    images: list[CheckedImage],
    fields: dict[str, Any],
    options: RemoveBgForm,
    site: str,
) -> list[ApiJob]:
    stored: list[Image] = []
    try:
        with transaction.atomic():
            created = []
            for image in images:
                info = image.form.info
                assert info is not None  # checked
                # Admitted one by one, each seeing the ones before it: the caps stay exact.
                admit_upload(key.owner, len(image.form.payload), info.width * info.height)
                job = store_upload(image.form, image.name, key.owner, fields["matting"])
                stored.append(job.image)
                created.append(
                    ApiJob.objects.create(
                        job=job,
                        key=key,
                        webhook_url=fields["webhook_url"],
                        site_url=site,
                        render_fields=options.request_data.fields,
                    )
                )
            return created
    except BaseException:
        # The rows were rolled back; the files written before the refusal are removed.
        for image in stored:
            delete_image(image)
        raise


def submit(request: HttpRequest, key: ApiKey) -> Submitted:
    """Check and store a submission; raises ApiError with the refusal's status."""
    data = read_request(request)
    found = sources(request, data)
    rate = take(key, len(found))
    try:
        fields = JobSubmitForm(data.fields).checked()
        options = render_fields(data)
        images = check_images(found)
        check_quota(key, sum((expected_credits(image, options) for image in images), Decimal(0)))
        try:
            jobs = _store(key, images, fields, options, request_base(request))
        except OverQuota as refused:
            raise _over_quota(refused) from None
    except ApiError as refused:
        refused.headers = {**rate.headers(), **refused.headers}
        raise
    return Submitted(jobs, rate)
