"""API keys and what each key has used.

A key is shown once, when it is created; only its SHA-256 is stored (keys are 32 random
characters, so a fast hash is enough: there is nothing to guess). Each key owns the images
it submits as the owner ``apikey-<id>``, so the editor's queue caps, disk budget and
retention apply to it as to a browser.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import string
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

KEY_PREFIX = "bgr_"
_ID_LENGTH = 8
_SECRET_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits

# Credits charged per image, as remove.bg counts them: a preview-sized result (at most
# 0.25 megapixels) costs a quarter, anything larger one credit per started 25 megapixels.
PREVIEW_PIXELS = 250_000
PIXELS_PER_CREDIT = 25_000_000


def credits_for(pixels: int) -> Decimal:
    """What a result of ``pixels`` pixels costs."""
    if pixels <= PREVIEW_PIXELS:
        return Decimal("0.25")
    return Decimal(math.ceil(pixels / PIXELS_PER_CREDIT))


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def month_start(day: date | None = None) -> date:
    day = day or timezone.now().date()
    return day.replace(day=1)


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only time its full text exists."""

    key: ApiKey
    text: str


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)

    def find(self, text: str) -> ApiKey | None:
        """The active key whose full text is ``text``, else None (never says which part was
        wrong)."""
        if not isinstance(text, str) or not text.startswith(KEY_PREFIX):
            return None
        body = text[len(KEY_PREFIX) :]
        if len(body) != _ID_LENGTH + _SECRET_LENGTH:
            return None
        key = self.active().filter(public_id=body[:_ID_LENGTH]).first()
        if key is None or not hmac.compare_digest(key.secret_hash, _digest(body[_ID_LENGTH:])):
            return None
        return key


class ApiKey(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # The key's first characters, shown in listings and used to find it.
    public_id = models.CharField(max_length=_ID_LENGTH, unique=True)
    secret_hash = models.CharField(max_length=64)
    # Signs this key's webhooks (HMAC-SHA256); shown with the key when it is created.
    webhook_secret = models.CharField(max_length=64)
    # Credits a calendar month (UTC); None: no quota.
    monthly_quota = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # "COUNT/PERIOD" images (e.g. 100/1m); empty: settings.API_RATE_LIMIT.
    rate = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def create(cls, name: str, monthly_quota: Decimal | None = None, rate: str = "") -> NewKey:
        public_id = _random(_ID_LENGTH)
        while cls.objects.filter(public_id=public_id).exists():
            public_id = _random(_ID_LENGTH)
        secret = _random(_SECRET_LENGTH)
        key = cls.objects.create(
            name=name,
            public_id=public_id,
            secret_hash=_digest(secret),
            webhook_secret=secrets.token_hex(32),
            monthly_quota=monthly_quota,
            rate=rate,
        )
        return NewKey(key, f"{KEY_PREFIX}{public_id}{secret}")

    @property
    def prefix(self) -> str:
        return f"{KEY_PREFIX}{self.public_id}"

    @property
    def owner(self) -> str:
        """The owner id of the images this key submits (editor.models.Image.owner)."""
        return f"apikey-{self.pk}"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        ApiKey.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=self.revoked_at
        )

    def touch(self) -> None:
        now = timezone.now()
        ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
        self.last_used_at = now

    def usage(self, month: date | None = None) -> ApiUsage:
        """This key's usage in ``month`` (default: this month), zero if none yet."""
        month = month_start(month)
        found = self.usages.filter(month=month).first()
        return found or ApiUsage(key=self, month=month)

    def credits_left(self) -> Decimal | None:
        """Credits left this month; None without a quota."""
        if self.monthly_quota is None:
            return None
        return max(Decimal(0), self.monthly_quota - self.usage().credits)

    def charge(self, credits: Decimal, images: int = 1) -> None:
        """Count ``credits`` (and ``images`` more images: 0 for a top-up of an image already
        counted) against this month."""
        month = month_start()
        added = {"credits": F("credits") + credits, "images": F("images") + images}
        with transaction.atomic():
            updated = ApiUsage.objects.filter(key=self, month=month).update(**added)
            if not updated:
                usage, created = ApiUsage.objects.get_or_create(
                    key=self, month=month, defaults={"credits": credits, "images": images}
                )
                if not created:
                    ApiUsage.objects.filter(pk=usage.pk).update(**added)


class ApiUsage(models.Model):
    """Credits and images one key used in one calendar month (UTC)."""

    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usages")
    month = models.DateField()  # the month's first day
    credits = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal(0))
    images = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "month"], name="one_usage_a_month")]
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.key.name} {self.month:%Y-%m}: {self.credits:g} credits, {self.images} images"


class ApiJobQuerySet(models.QuerySet["ApiJob"]):
    def of_key(self, key: ApiKey) -> ApiJobQuerySet:
        """``key``'s jobs whose image is still the key's (a job is its image's, and an image
        its owner's: both checks, so a row pointing elsewhere never leaks)."""
        return self.filter(key=key, job__image__owner=key.owner).select_related("job__image")


class ApiJob(models.Model):
    """A job submitted through the jobs API (/api/v1/jobs): the key it belongs to, where to
    tell when it ends, and what its result was charged. Deleted with its job (and so with
    its image, by the retention purge or a DELETE)."""

    job = models.OneToOneField(
        "editor.Job", on_delete=models.CASCADE, primary_key=True, related_name="api_job"
    )
    key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="jobs")
    # Called when the job ends (api.job_events); checked by api.webhooks when submitted.
    webhook_url = models.CharField(max_length=2048, blank=True)
    # The scheme and host the job was submitted to, for absolute URLs in its webhook.
    site_url = models.CharField(max_length=255)
    # remove.bg render options sent with the submission (as sent, checked then): the
    # defaults of its result downloads, whose own options win (api.job_results).
    render_fields = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # What the job was charged so far: its largest result download (charge_up_to).
    charged_at = models.DateTimeField(null=True, blank=True)
    credits_charged = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    objects = ApiJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["key", "-created_at"], name="api_job_key_newest")]
        verbose_name = "API job"

    def __str__(self) -> str:
        return f"API job {self.pk} of {self.key_id}"

    def charge_up_to(self, credits: Decimal) -> Decimal:
        """Charge the key so that this job has cost ``credits`` in all (a job costs what its
        largest download costs: a preview, then the full size, pays the difference); returns
        what this call charged. The row is locked, so concurrent downloads charge once."""
        with transaction.atomic():
            locked = ApiJob.objects.select_for_update().get(pk=self.pk)
            before = locked.credits_charged
            due = credits - (before or Decimal(0))
            if due > 0:
                locked.credits_charged, locked.charged_at = credits, timezone.now()
                locked.save(update_fields=["credits_charged", "charged_at"])
                self.key.charge(due, images=0 if before is not None else 1)
        self.credits_charged, self.charged_at = locked.credits_charged, locked.charged_at
        return max(due, Decimal(0))
