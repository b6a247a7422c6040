"""Django's admin for operators, at /admin/ with settings.ADMIN_ENABLED (loaded only then).

Images, jobs and results are read-only: nobody adds, edits or deletes rows by hand. What an
operator may do goes through actions (editor.operator_actions), which use the app's own paths:
re-queue a job (a new run, enqueued), fail a job, purge an image with its files. The actions
need the model's change permission (every superuser has it); view permission shows the lists.
Lists filter by state and age, and search by id or owner.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from editor import operator_actions
from editor.models import Image, Job, Result
from editor.operations import failure_reason

admin.site.site_header = "bgremover operations"
admin.site.site_title = "bgremover operations"


class AgeFilter(admin.SimpleListFilter):
    """How long ago the row was created (a job queued for hours, an image kept for days)."""

    title = "age"
    parameter_name = "age"
    AGES = {
        "hour": ("under an hour", None, timedelta(hours=1)),
        "day": ("an hour to a day", timedelta(hours=1), timedelta(days=1)),
        "older": ("over a day", timedelta(days=1), None),
    }

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(key, label) for key, (label, _, _) in self.AGES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() not in self.AGES:
            return queryset
        _, older_than, newer_than = self.AGES[self.value()]
        now = timezone.now()
        if older_than is not None:
            queryset = queryset.filter(created_at__lte=now - older_than)
        if newer_than is not None:
            queryset = queryset.filter(created_at__gt=now - newer_than)
        return queryset


class ImageJobStateFilter(admin.SimpleListFilter):
    """Images with a job in this state."""

    title = "job state"
    parameter_name = "job_state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return list(Job.Status.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() not in Job.Status.values:
            return queryset
        return queryset.filter(jobs__status=self.value()).distinct()


class OperatorAdmin(admin.ModelAdmin):
    """Read-only rows; actions for those with the change permission; search by id."""

    # Lookups that a search term written as a UUID is matched against exactly (the admin's own
    # search would compare UUIDs as text, which differs between databases).
    id_lookups: tuple[str, ...] = ("id",)
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            wanted = uuid.UUID(search_term.strip())
        except ValueError:
            return results, may_have_duplicates
        by_id = Q()
        for lookup in self.id_lookups:
            by_id |= Q(**{lookup: wanted})
        return results | queryset.filter(by_id), may_have_duplicates


def _purge(model_admin: OperatorAdmin, request: HttpRequest, images: QuerySet) -> None:
    count = 0
    for image in list(images):
        operator_actions.purge(image)
        count += 1
    model_admin.message_user(request, f"Purged {count} image(s) and their files.")


def _report(
    model_admin: OperatorAdmin, request: HttpRequest, verb: str, done: int, skipped: int
) -> None:
    model_admin.message_user(request, f"{verb} {done} job(s).")
    if skipped:
        model_admin.message_user(
            request,
            f"{skipped} job(s) were left as they are: their state does not allow it.",
            messages.WARNING,
        )


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under another, never added, changed or deleted by hand."""

    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class JobInline(ReadOnlyInline):
    model = Job
    fields = ("id", "status", "stage", "percent", "attempts", "created_at", "finished_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(Image)
class ImageAdmin(OperatorAdmin):
    list_display = (
        "id",
        "owner",
        "original_name",
        "format",
        "width",
        "height",
        "size_bytes",
        "created_at",
        "expires_at",
    )
    list_filter = (ImageJobStateFilter, AgeFilter)
    search_fields = ("=owner", "original_name")
    id_lookups = ("id", "jobs__id")
    date_hierarchy = "created_at"
    inlines = (JobInline,)
    actions = ("purge_images",)

    @admin.action(description="Purge the selected images and their files", permissions=["operate"])
    def purge_images(self, request: HttpRequest, queryset: QuerySet) -> None:
        _purge(self, request, queryset)


@admin.register(Job)
class JobAdmin(OperatorAdmin):
    list_display = (
        "id",
        "owner",
        "status",
        "stage",
        "percent",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "reason",
    )
    list_filter = ("status", AgeFilter, "matting")
    list_select_related = ("image",)
    search_fields = ("=image__owner", "=task_id")
    id_lookups = ("id", "image__id")
    actions = ("requeue_jobs", "fail_jobs", "purge_images")

    @admin.display(ordering="image__owner")
    def owner(self, job: Job) -> str:
        return job.image.owner

    @admin.display(description="failure reason")
    def reason(self, job: Job) -> str:
        return failure_reason(job.error) if job.status == Job.Status.FAILED else ""

    @admin.action(
        description="Re-queue the selected jobs (failed or running)", permissions=["operate"]
    )
    def requeue_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        outcomes = [operator_actions.requeue(job) for job in queryset.select_related("image")]
        _report(self, request, "Re-queued", outcomes.count(True), outcomes.count(False))

    @admin.action(description="Fail the selected jobs (queued or running)", permissions=["operate"])
    def fail_jobs(self, request: HttpRequest, queryset: QuerySet) -> None:
        outcomes = [operator_actions.fail(job) for job in queryset.select_related("image")]
        _report(self, request, "Failed", outcomes.count(True), outcomes.count(False))

    @admin.action(description="Purge the selected jobs' images and files", permissions=["operate"])
    def purge_images(self, request: HttpRequest, queryset: QuerySet) -> None:
        _purge(self, request, Image.objects.filter(jobs__in=queryset).distinct())


@admin.register(Result)
class ResultAdmin(OperatorAdmin):
    list_display = ("job", "owner", "size_bytes", "created_at")
    list_filter = (AgeFilter,)
    list_select_related = ("job__image",)
    search_fields = ("=job__image__owner",)
    id_lookups = ("job__id", "job__image__id")
    actions = ("purge_images",)

    @admin.display(ordering="job__image__owner")
    def owner(self, result: Result) -> str:
        return result.job.image.owner

    @admin.action(
        description="Purge the selected results' images and files", permissions=["operate"]
    )
    def purge_images(self, request: HttpRequest, queryset: QuerySet) -> None:
        _purge(self, request, Image.objects.filter(jobs__result__in=queryset).distinct())
