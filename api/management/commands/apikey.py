"""``manage.py apikey``: create, list and revoke the HTTP API's keys."""

from __future__ import annotations

from argparse import ArgumentParser
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiKey
from editor.management.commands.removebg import HelpFormatter
from editor.ratelimit import parse_rate

EPILOG = """
Examples:
    python manage.py apikey create shop --quota 500 --rate 30/1m
    python manage.py apikey list
    python manage.py apikey revoke shop

The key is printed once, by create: store it where your script can read it. Quota: credits
a calendar month (UTC); an image up to 0.25 megapixels costs 0.25, a larger one 1 credit per
started 25 megapixels. Rate: images per period for this key (default: API_RATE_LIMIT).
"""


def _quota(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CommandError(f"--quota must be a number of credits, got {text!r}") from None
    if not value.is_finite() or value < 0 or value >= Decimal("1e10"):
        raise CommandError(f"--quota must be 0 or more credits, got {text!r}")
    return value.quantize(Decimal("0.01"))


def _rate(text: str) -> str:
    try:
        parse_rate(text, "--rate")
    except ImproperlyConfigured as exc:
        raise CommandError(str(exc)) from None
    return text.strip().lower()


class Command(BaseCommand):
    help = "Create, list or revoke API keys."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> ArgumentParser:
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, epilog=EPILOG, **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="create a key and print it once")
        create.add_argument("name", help="a name for the key (who or what uses it)")
        create.add_argument("--quota", type=_quota, help="credits a month (default: none)")
        create.add_argument("--rate", type=_rate, default="", help="COUNT/PERIOD, e.g. 30/1m")
        actions.add_parser("list", help="list keys with this month's usage")
        revoke = actions.add_parser("revoke", help="revoke a key (it stops working at once)")
        revoke.add_argument("name")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"_{action}")(**options)

    def _create(self, name: str, quota: Decimal | None, rate: str, **options: Any) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("The name must be 1 to 100 characters.")
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"A key named {name!r} exists already: pick another name.")
        new = ApiKey.create(name, monthly_quota=quota, rate=rate)
        self.stdout.write(f"Created API key {name!r}. It is shown only this once:\n")
        self.stdout.write(f"    {new.text}\n")
        self.stdout.write(f"Webhook signing secret: {new.key.webhook_secret}\n")
        self.stdout.write("Send it as the X-Api-Key header.")

    def _list(self, **options: Any) -> None:
        keys = list(ApiKey.objects.all())
        if not keys:
            self.stdout.write("No API keys. Create one: python manage.py apikey create NAME")
            return
        rows = [("NAME", "KEY", "STATUS", "RATE", "QUOTA", "USED", "IMAGES", "LAST USED")]
        for key in keys:
            usage = key.usage()
            rows.append(
                (
                    key.name,
                    f"{key.prefix}…",
                    "revoked" if key.revoked else "active",
                    key.rate or f"{settings.API_RATE_LIMIT} (default)",
                    "none" if key.monthly_quota is None else f"{key.monthly_quota:g}",
                    f"{usage.credits:g}",
                    str(usage.images),
                    key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = zip(row, widths, strict=True)
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in cells))
        self.stdout.write("USED and IMAGES: this calendar month (UTC), in credits and images.")

    def _revoke(self, name: str, **options: Any) -> None:
        key = ApiKey.objects.filter(name=name).first()
        if key is None:
            raise CommandError(f"No API key named {name!r} (see: python manage.py apikey list).")
        if key.revoked:
            raise CommandError(f"The key {name!r} was revoked already.")
        key.revoke()
        self.stdout.write(f"Revoked API key {name!r}: requests with it now get 403.")
