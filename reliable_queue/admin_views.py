"""The queue dashboard's pages and actions, as a ``ModelAdmin`` mixin.

``admin.py`` registers :class:`QueueAdminViews` (through ``QueueAdmin``) for the
unmanaged :class:`~reliable_queue.models.Dashboard` model. Every page goes
through ``admin_site.admin_view`` (login, ``never_cache``, CSRF) and renders
with the site's ``each_context``, so it works on any ``AdminSite``.

Everything is read and changed through :class:`~reliable_queue.queue.Queue`:
counts come from ``stats()`` (LLEN/ZCARD), lists from fixed-size range reads,
a search is one ``get()``. Nothing here reads a whole list.

Permissions (see models.py): ``view_queues`` for every page, and each action
its own: ``requeue_jobs``, ``delete_jobs``, ``purge_jobs``. Actions are POST
only, ask for confirmation when bulk or destructive, report through the
messages framework and redirect afterwards.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, register_converter, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import job as jobmod
from .conf import get_settings
from .embedded import mask_url
from .exceptions import QueueNotFound
from .job import Job
from .queue import BATCH, Queue, get_queue, server_time

logger = logging.getLogger("reliable_queue.admin")

PERM_VIEW = "reliable_queue.view_queues"
PERM_REQUEUE = "reliable_queue.requeue_jobs"
PERM_DELETE = "reliable_queue.delete_jobs"
PERM_PURGE = "reliable_queue.purge_jobs"


@dataclass(frozen=True)
class StateInfo:
    name: str
    label: str
    #: Used in sentences: "3 dead job(s)".
    noun: str
    #: The default order of the list page (True: newest first).
    newest_first: bool
    oldest_label: str
    newest_label: str
    purgeable: bool


STATES: dict[str, StateInfo] = {
    "pending": StateInfo("pending", "Pending", "pending", False, "Oldest first (next to run)", "Newest first", True),
    "inflight": StateInfo("inflight", "In flight", "in-flight", False, "Lease ending soonest", "Lease ending latest", False),
    "scheduled": StateInfo("scheduled", "Scheduled", "scheduled", False, "Due soonest", "Due latest", True),
    "dead": StateInfo("dead", "Dead letter", "dead", True, "Oldest first", "Most recent first", True),
}

#: Characters of the arguments shown in a list row.
PREVIEW_CHARS = 80
#: Jobs listed on the confirmation page (the rest are counted).
CONFIRM_LIST = 100


def format_age(seconds: float | None) -> str:
    """A short human age: "42 s", "3 min 5 s", "2 h 10 min", "4 d 3 h"."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def preview(job: Job, limit: int = PREVIEW_CHARS) -> str:
    """The job's arguments as one short line (truncated with an ellipsis)."""
    if job.raw is not None:
        text = job.raw
    else:
        parts: list[str] = []
        size = 0
        items: list[tuple[str | None, Any]] = [(None, a) for a in job.args] + list(job.kwargs.items())
        for key, value in items:
            try:
                shown = json.dumps(value, ensure_ascii=False, cls=DjangoJSONEncoder)
            except (TypeError, ValueError):
                shown = repr(value)
            part = shown if key is None else f"{key}={shown}"
            parts.append(part)
            size += len(part) + 2
            if size > limit:
                break
        text = ", ".join(parts)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def local(dt: datetime | None) -> datetime | None:
    """``dt`` (stored in UTC) in the active Django time zone."""
    return timezone.localtime(dt) if dt is not None else None


def short_time(dt: datetime | None) -> str:
    """A compact local time for table cells: "Dec 03 20:32:35", with the year when it is not this one."""
    if dt is None:
        return "—"
    if dt.year != timezone.localtime().year:
        return dt.strftime("%Y-%m-%d %H:%M")
    return dt.strftime("%b %d %H:%M:%S")


def id_token(job_id: str) -> str:
    """``job_id`` as one URL path segment and one form value that no server, proxy or
    browser changes: a plain id as it is; any other string (a newline, '/', '..', '?',
    '#', spaces, non-ASCII: ids pushed into Redis by something else) as "~" and its
    UTF-8 in URL-safe base64. A plain id never starts with "~", so both read back."""
    if jobmod.is_valid_id(job_id) and job_id not in (".", ".."):
        return job_id
    return "~" + base64.urlsafe_b64encode(job_id.encode("utf-8", "surrogatepass")).decode("ascii").rstrip("=")


def id_from_token(token: str) -> str:
    """The id behind :func:`id_token`; a value that is no token is taken as the id itself."""
    if not token.startswith("~"):
        return token
    data = token[1:]
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode("utf-8", "surrogatepass")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return token


class JobIdConverter:
    """``<rq_job_id:job_id>`` in the job page's URL: any id, through :func:`id_token`."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        return id_from_token(value)

    def to_url(self, value: str) -> str:
        return id_token(value)


register_converter(JobIdConverter, "rq_job_id")


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    return [v for v in values if v and not (v in seen or seen.add(v))]


class QueueAdminViews:
    """The dashboard, list, detail and action views; mixed into a ``ModelAdmin``."""

    #: Jobs per list page (each page is one range read plus one pipelined read).
    list_per_page = 50
    dashboard_template = "reliable_queue/admin/dashboard.html"
    list_template = "reliable_queue/admin/job_list.html"
    detail_template = "reliable_queue/admin/job_detail.html"
    confirm_template = "reliable_queue/admin/confirm.html"
    error_template = "reliable_queue/admin/error.html"

    admin_site: Any
    model: Any

    # ------------------------------------------------------------ admin hooks

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.has_perm(PERM_VIEW)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.has_perm(PERM_VIEW)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        info = f"{self.model._meta.app_label}_{self.model._meta.model_name}"

        def wrap(view: Any, post_only: bool = False) -> Any:
            return self.admin_site.admin_view(require_POST(view) if post_only else view)

        return [
            # The admin index links to "<app>_<model>_changelist": that is the dashboard.
            path("", wrap(self.dashboard_view), name=f"{info}_changelist"),
            path("<str:queue>/job/<rq_job_id:job_id>/", wrap(self.detail_view), name=f"{info}_job"),
            path("<str:queue>/<str:state>/", wrap(self.list_view), name=f"{info}_list"),
            path("<str:queue>/<str:state>/requeue/", wrap(self.requeue_view, True), name=f"{info}_requeue"),
            path("<str:queue>/<str:state>/delete/", wrap(self.delete_view, True), name=f"{info}_delete"),
            path("<str:queue>/<str:state>/purge/", wrap(self.purge_view, True), name=f"{info}_purge"),
        ]

    # --------------------------------------------------------------- helpers

    def _url(self, name: str, **kwargs: Any) -> str:
        meta = self.model._meta
        return reverse(f"{self.admin_site.name}:{meta.app_label}_{meta.model_name}_{name}", kwargs=kwargs or None)

    def list_url(self, queue: str, state: str, **params: Any) -> str:
        url = self._url("list", queue=queue, state=state)
        params = {k: v for k, v in params.items() if v not in (None, "")}
        return f"{url}?{urlencode(params)}" if params else url

    def job_url(self, queue: str, job_id: str) -> str:
        return self._url("job", queue=queue, job_id=job_id)

    @staticmethod
    def _require(request: HttpRequest, *perms: str) -> None:
        for perm in perms:
            if not request.user.has_perm(perm):
                raise PermissionDenied(f"This needs the {perm} permission.")

    @staticmethod
    def _queue(name: str) -> Queue:
        if name not in get_settings().queues:
            raise Http404("No such queue is configured.")
        try:
            return get_queue(name)
        except QueueNotFound:  # pragma: no cover - settings changed in between
            raise Http404("No such queue is configured.") from None

    @staticmethod
    def _state(name: str, allowed: tuple[str, ...] = tuple(STATES)) -> StateInfo:
        if name not in allowed:
            raise Http404("No such job state here.")
        return STATES[name]

    def _perms(self, request: HttpRequest) -> dict[str, bool]:
        user = request.user
        return {
            "requeue": user.has_perm(PERM_REQUEUE),
            "delete": user.has_perm(PERM_DELETE),
            "purge": user.has_perm(PERM_PURGE),
        }

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "app_label": self.model._meta.app_label,
            "dashboard_url": self._url("changelist"),
            "rq_perms": self._perms(request),
            "time_zone": timezone.get_current_timezone_name(),
            **extra,
        }

    def _render(self, request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context, status=status)

    def _redis_error(self, request: HttpRequest, exc: redis.RedisError) -> HttpResponse:
        logger.error("admin page %s: Redis error %s", request.path, exc.__class__.__name__)
        message = _scrub(f"{exc.__class__.__name__}: {exc}")
        ctx = self._context(request, "Redis is not answering", message=message, server=server_description())
        return self._render(request, self.error_template, ctx, status=503)

    def _row(self, queue: Queue, job: Job, now: datetime | None = None) -> dict[str, Any]:
        """What a table row shows, computed once (datetimes in the active time zone,
        plus the same as short text so the list template needs no date filter)."""
        max_attempts = job.max_attempts or queue.config.max_attempts
        times = {name: local(getattr(job, name)) for name in
                 ("enqueued_at", "started_at", "lease_deadline", "scheduled_for", "dead_at")}
        reason = job.dead_reason or ""
        return {
            "job": job,
            "id": job.id,
            "token": id_token(job.id),  # what the forms post for it (see id_token)
            "url": self.job_url(queue.name, job.id),
            "malformed": job.raw is not None,
            "preview": preview(job),
            "attempts": f"{job.attempts} / {max_attempts}",
            **times,
            "text": {name: short_time(value) for name, value in times.items()},
            "full": {name: value.strftime("%Y-%m-%d %H:%M:%S %Z") if value else "" for name, value in times.items()},
            "reason": reason if len(reason) <= 160 else reason[:159] + "…",
            "expired": bool(job.state == "inflight" and job.lease_deadline and now and job.lease_deadline <= now),
            "state_label": STATES[job.state].label if job.state in STATES else job.state,
        }

    # ----------------------------------------------------------------- pages

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, PERM_VIEW)
        settings = get_settings()
        rows = []
        try:
            for name in settings.queues:
                queue = get_queue(name)
                try:
                    stats = queue.stats()
                except redis.ResponseError as exc:
                    # One queue whose keys something else overwrote: say so in its row,
                    # and show the others.
                    logger.error("queue %s: stats refused by Redis: %s", name, exc)
                    rows.append({"name": name, "error": str(exc), "urls": {}})
                    continue
                worker_limit = max(queue.config.visibility_timeout, 5.0)
                janitor_limit = max(3 * settings.janitor_interval, 15.0)
                workers = sorted(w for w, age in stats["workers"].items() if age <= worker_limit)
                janitors = sorted(j for j, age in stats["janitors"].items() if age <= janitor_limit)
                rows.append({
                    "name": name,
                    "stats": stats,
                    "urls": {state: self.list_url(name, state) for state in STATES},
                    "oldest_pending": format_age(stats["oldest_pending_age"]),
                    "oldest_inflight": format_age(stats["oldest_inflight_age"]),
                    "workers": workers,
                    "janitors": janitors,
                    "last_janitor": format_age(min(stats["janitors"].values())) if stats["janitors"] else None,
                })
        except redis.RedisError as exc:
            return self._redis_error(request, exc)
        ctx = self._context(request, "Queues", rows=rows, server=server_description(), prefix=settings.prefix,
                            states=STATES)
        return self._render(request, self.dashboard_template, ctx)

    def list_view(self, request: HttpRequest, queue: str, state: str) -> HttpResponse:
        self._require(request, PERM_VIEW)
        q = self._queue(queue)
        info = self._state(state)
        order = request.GET.get("order")
        newest = info.newest_first if order not in ("newest", "oldest") else order == "newest"
        search = request.GET.get("q", "").strip()[:200]
        per_page = self.list_per_page
        try:
            stats = q.stats()
            count = stats[state]
            pages = max(1, math.ceil(count / per_page))
            try:
                page = min(max(1, int(request.GET.get("page", 1))), pages)
            except (TypeError, ValueError):
                page = 1
            found_elsewhere = None
            if search:
                job = q.get(search)
                jobs = [job] if job is not None else []
            else:
                read = getattr(q, state)  # q.pending / q.inflight / q.scheduled / q.dead: one range read
                jobs = read(offset=(page - 1) * per_page, limit=per_page, newest_first=newest)
            now = None
            if state == "inflight" or any(j.state == "inflight" for j in jobs):
                now = jobmod.from_ms(server_time() * 1000)
        except redis.RedisError as exc:
            return self._redis_error(request, exc)
        rows = [self._row(q, job, now) for job in jobs]
        if search and jobs and jobs[0].state != state:
            found_elsewhere = jobs[0].state
        order_key = "newest" if newest else "oldest"
        other_queues = [n for n in get_settings().queues if n != q.name]

        def page_url(n: int) -> str:
            return self.list_url(q.name, state, order=order_key if order_key != ("newest" if info.newest_first else "oldest") else None,
                                 page=n if n > 1 else None)

        ctx = self._context(
            request, f"{info.label} jobs in queue “{q.name}”",
            queue=q, state=info, states=STATES, stats=stats, count=count, rows=rows, search=search,
            found_elsewhere=STATES[found_elsewhere].noun if found_elsewhere in STATES else found_elsewhere,
            newest=newest, order_key=order_key,
            order_urls={"oldest": self.list_url(q.name, state, order="oldest"),
                        "newest": self.list_url(q.name, state, order="newest")},
            tabs=[{"state": s, "label": STATES[s].label, "count": stats[s], "url": self.list_url(q.name, s),
                   "current": s == state} for s in STATES],
            page=page, pages=pages, per_page=per_page, first_index=(page - 1) * per_page + 1 if rows else 0,
            last_index=(page - 1) * per_page + len(rows),
            prev_url=page_url(page - 1) if page > 1 and not search else None,
            next_url=page_url(page + 1) if page < pages and not search else None,
            first_url=page_url(1) if page > 1 and not search else None,
            last_url=page_url(pages) if page < pages and not search else None,
            list_url=self.list_url(q.name, state),
            requeue_url=self._url("requeue", queue=q.name, state=state),
            delete_url=self._url("delete", queue=q.name, state=state),
            purge_url=self._url("purge", queue=q.name, state=state),
            other_queues=other_queues,
            selectable=self._perms(request)["delete"] or (state != "pending" and self._perms(request)["requeue"]),
            crumbs=[{"label": q.name, "url": self.list_url(q.name, "pending") if state != "pending" else None},
                    {"label": info.label}],
        )
        return self._render(request, self.list_template, ctx)

    def detail_view(self, request: HttpRequest, queue: str, job_id: str) -> HttpResponse:
        self._require(request, PERM_VIEW)
        q = self._queue(queue)
        try:
            job = q.get(job_id)
            now = jobmod.from_ms(server_time() * 1000) if job is not None and job.state == "inflight" else None
        except redis.RedisError as exc:
            return self._redis_error(request, exc)
        if job is None:
            ctx = self._context(request, "Job not found", queue=q, crumbs=[
                                    {"label": q.name, "url": self.list_url(q.name, "pending")}, {"label": "Not found"}],
                                message=f"No job with id “{job_id}” is stored in queue “{q.name}”: it is done, "
                                        "was deleted, or was never enqueued.",
                                back_url=self.list_url(q.name, "pending"))
            return self._render(request, self.error_template, ctx, status=404)
        if job.raw is not None:
            envelope = job.raw
        else:
            envelope = json.dumps(job.to_envelope(), indent=2, ensure_ascii=False, cls=DjangoJSONEncoder)
        errors = []
        for n, record in enumerate(job.errors, 1):
            at = record.get("at")
            errors.append({
                "attempt": record.get("attempt", n),
                "at": local(jobmod.from_ms(at)) if isinstance(at, (int, float)) and not isinstance(at, bool) else None,
                "type": record.get("type") or "Error",
                "message": record.get("message") or "",
                "traceback": record.get("traceback") or "",
            })
        state = STATES.get(job.state or "")
        ctx = self._context(
            request, f"Job {job.id}",
            queue=q, job=job, row=self._row(q, job, now), state=state, envelope=envelope, errors=errors,
            list_url=self.list_url(q.name, job.state or "pending"),
            requeue_url=self._url("requeue", queue=q.name, state=job.state),
            delete_url=self._url("delete", queue=q.name, state=job.state),
            other_queues=[n for n in get_settings().queues if n != q.name],
            crumbs=[{"label": q.name, "url": self.list_url(q.name, "pending")},
                    {"label": state.label if state else job.state, "url": self.list_url(q.name, job.state or "pending")},
                    {"label": job.id}],
        )
        return self._render(request, self.detail_template, ctx)

    # --------------------------------------------------------------- actions

    def _selected(self, request: HttpRequest) -> list[str]:
        return [id_from_token(i) for i in _unique([i.strip() for i in request.POST.getlist("ids")])[:BATCH]]

    def _current(self, q: Queue, ids: list[str], state: str) -> tuple[list[Job], list[str]]:
        """The selected jobs still in ``state``, and the ids that moved on (or are gone)."""
        present, gone = [], []
        for job_id in ids:
            job = q.get(job_id)
            if job is not None and job.state == state:
                present.append(job)
            else:
                gone.append(job_id)
        return present, gone

    def _back(self, request: HttpRequest, q: Queue, state: str, job_id: str | None = None) -> HttpResponseRedirect:
        """Where to go after an action: the job's page when it came from there, else the list."""
        if job_id and request.POST.get("next") == "job":
            return HttpResponseRedirect(self.job_url(q.name, job_id))
        order = request.POST.get("order")
        return HttpResponseRedirect(self.list_url(q.name, state, order=order if order in ("newest", "oldest") else None))

    def _confirm(self, request: HttpRequest, q: Queue, info: StateInfo, action: str, action_url: str, *,
                 jobs: list[Job], count: int, title: str, question: str, warning: str = "",
                 target: str | None = None, all_jobs: bool = False, button: str = "Yes, I’m sure",
                 danger: bool = False) -> HttpResponse:
        ctx = self._context(
            request, title, queue=q, state=info, action=action, action_url=action_url, question=question,
            warning=warning, count=count, button=button, danger=danger,
            rows=[self._row(q, j) for j in jobs[:CONFIRM_LIST]], more=max(0, len(jobs) - CONFIRM_LIST),
            ids=[id_token(j.id) for j in jobs], target=target, all_jobs=all_jobs,
            next=request.POST.get("next", ""), order=request.POST.get("order", ""),
            cancel_url=(self.job_url(q.name, jobs[0].id) if request.POST.get("next") == "job" and jobs
                        else self.list_url(q.name, info.name)),
            list_url=self.list_url(q.name, info.name),
            crumbs=[{"label": q.name, "url": self.list_url(q.name, "pending")},
                    {"label": info.label, "url": self.list_url(q.name, info.name)},
                    {"label": "Confirm"}],
        )
        return self._render(request, self.confirm_template, ctx)

    def requeue_view(self, request: HttpRequest, queue: str, state: str) -> HttpResponse:
        """Dead: requeue selected/all (optionally into another queue). In flight: force
        requeue. Scheduled: run now. Jobs keep their id and history."""
        self._require(request, PERM_VIEW, PERM_REQUEUE)
        q = self._queue(queue)
        info = self._state(state, ("dead", "inflight", "scheduled"))
        ids = self._selected(request)
        all_jobs = state == "dead" and request.POST.get("all") == "1"
        target = request.POST.get("target") or q.name
        if target not in get_settings().queues or (target != q.name and state != "dead"):
            messages.error(request, "Jobs can only be requeued into a configured queue, and only dead ones into "
                                    "another queue.")
            return self._back(request, q, state)
        if not ids and not all_jobs:
            messages.warning(request, "No jobs were selected, so nothing was requeued.")
            return self._back(request, q, state)
        try:
            if all_jobs:
                jobs, gone, count = [], [], q.stats()["dead"]
                if count == 0:
                    messages.info(request, "The dead-letter queue is empty: nothing to requeue.")
                    return self._back(request, q, state)
            else:
                jobs, gone = self._current(q, ids, state)
                count = len(jobs)
            confirmed = request.POST.get("confirmed") == "yes"
            needs_confirm = all_jobs or len(ids) > 1 or state == "inflight" or target != q.name
            if needs_confirm and not confirmed:
                if not all_jobs and not jobs:
                    messages.warning(request, f"None of the selected jobs is {info.noun} any more; "
                                              "nothing was requeued.")
                    return self._back(request, q, state)
                into = f" into queue “{target}”" if target != q.name else ""
                verb = {"dead": "Requeue", "inflight": "Force requeue", "scheduled": "Run now"}[state]
                what = (f"all {count} dead job(s)" if all_jobs else f"{len(jobs)} {info.noun} job(s)")
                question = (f"Run {what} now? They go to the end of the pending list{into}."
                            if state == "scheduled" else f"{verb} {what}{into}? They go to the end of the "
                            f"pending list{' of that queue' if into else ''} with their id and error history.")
                warning = ""
                if state == "inflight":
                    warning = ("These jobs may still be running. A worker that is still running one will have its "
                               "result discarded (its lease is lost) and the job will run again. Only force a "
                               "requeue for a job you know is stuck.")
                if gone:
                    warning += f" {len(gone)} selected job(s) are no longer {info.noun} and will be skipped."
                return self._confirm(request, q, info, "requeue", self._url("requeue", queue=q.name, state=state),
                                     jobs=jobs, count=count, title="Are you sure?", question=question,
                                     warning=warning.strip(), target=target if target != q.name else None,
                                     all_jobs=all_jobs, button=f"Yes, {verb.lower()}")
            user = request.user
            if all_jobs:
                if target != q.name:
                    done = q.move_dead(target, None, source="admin", user=user)
                else:
                    done = q.requeue_dead(all=True, source="admin", user=user)
            elif not jobs:
                done = 0
            elif target != q.name:
                done = q.move_dead(target, [j.id for j in jobs], source="admin", user=user)
            else:
                results = q.requeue_many([j.id for j in jobs], reset_attempts=state != "scheduled",
                                         source="admin", user=user, only_from=state)
                done = sum(1 for r in results if r == state)
        except redis.RedisError as exc:
            return self._redis_error(request, exc)
        into = f" into queue “{target}”" if target != q.name else ""
        if state == "scheduled":
            messages.success(request, f"{done} scheduled job(s) will run now (moved to pending{into}).")
        else:
            messages.success(request, f"Requeued {done} {info.noun} job(s){into}.")
        if gone:
            messages.warning(request, f"Skipped {len(gone)} job(s) that are no longer {info.noun}.")
        log = logger.warning if state == "inflight" else logger.info
        log("user %s requeued %d %s job(s) of queue %s%s%s: %s", user.get_username(), done, state, q.name,
            f" into {target}" if target != q.name else "", " (all)" if all_jobs else "",
            ", ".join(j.id for j in jobs[:20]) + (" ..." if len(jobs) > 20 else ""))
        landing = target if target != q.name else q.name
        if len(jobs) == 1 and not all_jobs and request.POST.get("next") == "job":
            return HttpResponseRedirect(self.job_url(landing, jobs[0].id))
        return self._back(request, q, state)

    def delete_view(self, request: HttpRequest, queue: str, state: str) -> HttpResponse:
        """Delete the selected jobs of one state (always confirmed first)."""
        self._require(request, PERM_VIEW, PERM_DELETE)
        q = self._queue(queue)
        info = self._state(state)
        ids = self._selected(request)
        if not ids:
            messages.warning(request, "No jobs were selected, so nothing was deleted.")
            return self._back(request, q, state)
        try:
            jobs, gone = self._current(q, ids, state)
            if request.POST.get("confirmed") != "yes":
                if not jobs:
                    messages.warning(request, f"None of the selected jobs is {info.noun} any more; "
                                              "nothing was deleted.")
                    return self._back(request, q, state)
                warning = "Deleted jobs are gone for good: they will not run and cannot be restored."
                if state == "inflight":
                    warning += (" A worker may still be running them; its result will be discarded.")
                if gone:
                    warning += f" {len(gone)} selected job(s) are no longer {info.noun} and will be skipped."
                return self._confirm(request, q, info, "delete", self._url("delete", queue=q.name, state=state),
                                     jobs=jobs, count=len(jobs), title="Are you sure?",
                                     question=f"Delete {len(jobs)} {info.noun} job(s) from queue “{q.name}”?",
                                     warning=warning, button="Yes, delete", danger=True)
            done = sum(1 for j in jobs if q.delete(j.id))
        except redis.RedisError as exc:
            return self._redis_error(request, exc)
        messages.success(request, f"Deleted {done} {info.noun} job(s).")
        if gone:
            messages.warning(request, f"Skipped {len(gone)} job(s) that are no longer {info.noun}.")
        logger.warning("user %s deleted %d %s job(s) of queue %s: %s", request.user.get_username(), done, state,
                       q.name, ", ".join(j.id for j in jobs[:20]) + (" ..." if len(jobs) > 20 else ""))
        return self._back(request, q, state)  # to the list: the job page is gone

    def purge_view(self, request: HttpRequest, queue: str, state: str) -> HttpResponse:
        """Delete every job of one state (pending, scheduled or dead), after confirmation."""
        self._require(request, PERM_VIEW, PERM_PURGE)
        q = self._queue(queue)
        info = self._state(state, ("pending", "scheduled", "dead"))
        try:
            count = q.stats()[state]
            if request.POST.get("confirmed") != "yes":
                if count == 0:
                    messages.info(request, f"There are no {info.noun} jobs to purge.")
                    return self._back(request, q, state)
                return self._confirm(
                    request, q, info, "purge", self._url("purge", queue=q.name, state=state), jobs=[], count=count,
                    title="Are you sure?",
                    question=f"Purge queue “{q.name}”: delete all {count} {info.noun} job(s)?",
                    warning="Every job in this state is deleted for good, including any added while this page is "
                            "open. This cannot be undone.", button="Yes, purge", danger=True)
            done = q.purge(state)
        except redis.RedisError as exc:
            return self._redis_error(request, exc)
        messages.success(request, f"Purged {done} {info.noun} job(s) from queue “{q.name}”.")
        logger.warning("user %s purged %d %s job(s) of queue %s", request.user.get_username(), done, state, q.name)
        return self._back(request, q, state)


def server_description() -> str:
    """Which Redis the queues use, without credentials."""
    settings = get_settings()
    if settings.cache_alias is not None:
        return f"cache alias “{settings.cache_alias}”"
    return mask_url(settings.redis_url or "")


def _scrub(text: str) -> str:
    """``text`` without the configured Redis password, should an error message carry it."""
    settings = get_settings()
    url = settings.redis_url or ""
    try:
        parts = urlsplit(url)
        secrets = [parts.password] if parts.password else []
        if parts.username and not parts.password:
            secrets.append(parts.username)
        secrets += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
        secrets += [str(v) for k, v in settings.redis_options.items() if k == "password" and v]
    except ValueError:
        secrets = []
    for secret in secrets:
        text = text.replace(secret, "***")
    return text.replace(url, mask_url(url)) if url else text
