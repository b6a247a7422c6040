"""The operators' admin (settings.ADMIN_ENABLED, see editor.admin): API keys with this
month's usage and every month's, read-only, and an action that revokes keys. Keys are created
with ``manage.py apikey create``, the only place a key's text is ever shown."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from api.models import ApiKey, ApiUsage, month_start
from editor.admin import OperatorAdmin, ReadOnlyInline


class UsageInline(ReadOnlyInline):
    model = ApiUsage
    fields = ("month", "credits", "images")
    readonly_fields = fields


@admin.register(ApiKey)
class ApiKeyAdmin(OperatorAdmin):
    list_display = (
        "name",
        "prefix",
        "status",
        "rate",
        "monthly_quota",
        "credits_this_month",
        "images_this_month",
        "last_used_at",
        "created_at",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "=public_id")
    id_lookups = ()
    fields = ("name", "prefix", "status", "rate", "monthly_quota", "created_at", "last_used_at")
    readonly_fields = fields
    inlines = (UsageInline,)
    actions = ("revoke_keys",)

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        return "revoked" if key.revoked else "active"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        this_month = ApiUsage.objects.filter(key=OuterRef("pk"), month=month_start())
        return (
            super()
            .get_queryset(request)
            .annotate(
                month_credits=Subquery(this_month.values("credits")[:1]),
                month_images=Subquery(this_month.values("images")[:1]),
            )
        )

    @admin.display(description="credits this month")
    def credits_this_month(self, key: ApiKey) -> str:
        return f"{key.month_credits or 0:g}"  # type: ignore[attr-defined]

    @admin.display(description="images this month")
    def images_this_month(self, key: ApiKey) -> int:
        return key.month_images or 0  # type: ignore[attr-defined]

    @admin.action(description="Revoke the selected keys", permissions=["operate"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            key.revoke()
        self.message_user(request, f"Revoked {len(keys)} key(s): they now get 403.")
