"""API keys: created once, stored hashed, found by their full text only, revoked at once;
usage counted per calendar month; per-key rate limits and quotas."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from api.errors import ApiError
from api.limits import check_quota, rate_state, take
from api.models import KEY_PREFIX, ApiJob, ApiKey, ApiUsage, credits_for
from tests.web.factories import make_job

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("apikey", *args, stdout=out)
    return out.getvalue()


def created_key(output: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith(KEY_PREFIX))


def test_create_prints_the_key_once_and_stores_only_its_hash() -> None:
    output = run("create", "shop", "--quota", "100", "--rate", "30/1m")
    text = created_key(output)
    key = ApiKey.objects.get(name="shop")
    assert text.startswith(key.prefix)
    assert text[len(key.prefix) :] not in key.secret_hash  # the secret itself is not stored
    assert key.monthly_quota == Decimal(100) and key.rate == "30/1m"
    assert ApiKey.objects.find(text) == key
    assert text not in run("list")  # never shown again


def test_wrong_or_malformed_keys_are_not_found() -> None:
    text = ApiKey.create("shop").text
    wrong_secret = text[:-1] + ("a" if text[-1] != "a" else "b")
    for attempt in (wrong_secret, text + "x", text[:-1], "", "bgr_", text.upper(), None):
        assert ApiKey.objects.find(attempt) is None  # type: ignore[arg-type]


def test_revoked_keys_stop_working_at_once() -> None:
    text = ApiKey.create("shop").text
    assert "Revoked" in run("revoke", "shop")
    assert ApiKey.objects.find(text) is None
    assert "revoked" in run("list")
    with pytest.raises(CommandError, match="revoked already"):
        run("revoke", "shop")


def test_command_refuses_bad_input() -> None:
    run("create", "shop")
    with pytest.raises(CommandError, match="exists already"):
        run("create", "shop")
    with pytest.raises(CommandError, match="No API key named"):
        run("revoke", "nobody")
    with pytest.raises(CommandError, match="1 to 100 characters"):
        run("create", "x" * 101)
    for bad in (["--quota", "-1"], ["--quota", "lots"], ["--rate", "fast"], ["--rate", "0/1m"]):
        with pytest.raises(CommandError):
            run("create", "other", *bad)
    assert not ApiKey.objects.filter(name="other").exists()


def test_list_shows_this_months_usage() -> None:
    key = ApiKey.create("shop", monthly_quota=Decimal(10)).key
    key.charge(Decimal("0.25"))
    key.charge(Decimal(1))
    ApiUsage.objects.create(key=key, month=date(2000, 1, 1), credits=Decimal(99), images=99)
    line = next(line for line in run("list").splitlines() if line.startswith("shop"))
    assert "1.25" in line and " 2 " in f" {line} " and "99" not in line
    assert key.credits_left() == Decimal("8.75")


def test_credits_follow_remove_bg_weighting() -> None:
    assert credits_for(625 * 400) == Decimal("0.25")
    assert credits_for(1000 * 1000) == Decimal(1)
    assert credits_for(25_000_000) == Decimal(1)
    assert credits_for(25_000_001) == Decimal(2)


def test_rate_limit_counts_images_per_key(settings: object) -> None:
    settings.API_RATE_LIMIT = "3/1m"  # type: ignore[attr-defined]
    first, second = ApiKey.create("a").key, ApiKey.create("b", rate="5/1h").key
    states = [take(first) for _ in range(3)]
    assert [state.remaining for state in states] == [2, 1, 0]
    with pytest.raises(ApiError) as refused:
        take(first)
    assert refused.value.status == 429 and refused.value.retry_after_s >= 1
    assert refused.value.headers["X-RateLimit-Remaining"] == "0"
    assert take(second).limit == 5  # its own rate, its own count
    assert rate_state(first).remaining == 0


def test_quota_refuses_an_image_that_would_pass_it() -> None:
    key = ApiKey.create("a", monthly_quota=Decimal(1)).key
    check_quota(key, Decimal(1))
    key.charge(Decimal("0.75"))
    check_quota(key, Decimal("0.25"))
    with pytest.raises(ApiError) as refused:
        check_quota(key, Decimal(1))
    assert refused.value.status == 402 and "0.25" in refused.value.title
    check_quota(ApiKey.create("unlimited").key, Decimal(1000))


def test_a_job_costs_what_its_largest_download_costs() -> None:
    key = ApiKey.create("jobs").key
    api_job = ApiJob.objects.create(job=make_job(key.owner), key=key, site_url="http://x")
    charged = [
        api_job.charge_up_to(Decimal(amount)) for amount in ("0.25", "0.25", "1", "0.25", "2")
    ]
    assert charged == [Decimal("0.25"), 0, Decimal("0.75"), 0, Decimal(1)]
    usage = key.usage()
    assert usage.credits == Decimal(2) and usage.images == 1  # one image, topped up
    assert ApiJob.objects.get(pk=api_job.pk).credits_charged == Decimal(2)
