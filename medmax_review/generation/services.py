"""Generation: prompt templates, and jobs that turn source records into candidates.

A job snapshots its record ids at launch and splits them into chunks, each a task of its own
(chunks.py), which workers claim and run (runner.py). Running a chunk is safe to repeat: one
candidate per (record, task, template_ref, sample_index) is enforced by the database, items
that already have a candidate are skipped, and counters move (with F(), by however many workers
at once) in the same transaction as the candidates they count, so a worker killed mid-chunk
loses nothing and duplicates nothing.
"""

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from medmax_review.core import medmax
from medmax_review.core.audit import audit_record
from medmax_review.core.leases import lease_resend_ids
from medmax_review.core.models import AuditEvent
from medmax_review.generation import chunks, selectors
from medmax_review.generation.backends import BackendError, backend_for
from medmax_review.generation.backends.openai_compat import RESPONSE_FORMATS
from medmax_review.generation.models import (
    BACKEND_CHOICES,
    BACKEND_OPENAI,
    BACKEND_TEMPLATE,
    GenerationChunk,
    GenerationJob,
    PromptTemplate,
)
from medmax_review.generation.prompts import (
    DEFAULT_TEMPLATES,
    VISION_TASKS,
    record_missing,
    template_fields,
)
from medmax_review.generation.runner import (
    JobRunner,
    runner_id,
    template_ref_for,
)
from medmax_review.projects.models import Project
from medmax_review.review.models import GENERATION_ERROR, Candidate

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE_NAME = "default"
MAX_SAMPLES = 20

# job_run outcomes.
RAN, BUSY, NOTHING_TO_DO = "ran", "busy", "nothing to do"


class JobError(ValueError):
    """A job cannot be created or changed; the message names the field at fault."""


# ---------------------------------------------------------------------------------------------
# Templates


def templates_ensure_defaults() -> list[PromptTemplate]:
    """The shipped default template of every task (version 1, shared by all projects)."""
    templates = []
    for task, text in DEFAULT_TEMPLATES.items():
        template, _ = PromptTemplate.objects.get_or_create(
            project=None, task=task, name=DEFAULT_TEMPLATE_NAME, version=1,
            defaults={"text": text},
        )
        templates.append(template)
    return templates


def template_save(
    *, project: Project, task: str, name: str, text: str, user=None
) -> PromptTemplate:
    """Save an edit as a new version; a version is never changed in place.

    Versions count across the shipped default and the project's own copies, so template refs
    ("vqa/default@v3") stay unique within a project.
    """
    if task not in medmax.TASKS:
        raise JobError(f"task: unknown task {task!r}")
    name = name.strip() or DEFAULT_TEMPLATE_NAME
    if not text.strip():
        raise JobError("text: the template is empty")
    template_fields(text)  # raises TemplateError naming the line and field
    for _attempt in range(3):
        latest = selectors.template_latest(project=project, task=task, name=name)
        if latest is not None and latest.text == text:
            return latest
        try:
            with transaction.atomic():
                template = PromptTemplate.objects.create(
                    project=project, task=task, name=name, text=text, created_by=user,
                    version=(latest.version + 1) if latest else 1,
                )
                audit_record(AuditEvent.TEMPLATE_SAVED, actor=user, project=project,
                             target=template.ref)
                return template
        except IntegrityError:
            continue  # someone saved the same version number first: number again
    raise JobError("text: the template is being edited by someone else; try again")


# ---------------------------------------------------------------------------------------------
# Creating jobs


def _number(parameters: dict, key: str, kind, low, high, default):
    raw = parameters.get(key, default)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError, InvalidOperation):
        raise JobError(f"{key}: {raw!r} is not a number") from None
    if not low <= value <= high:
        raise JobError(f"{key}: {value} is outside {low}..{high}")
    return value


def _clean_parameters(backend: str, parameters: dict | None) -> dict:
    parameters = dict(parameters or {})
    clean = {
        "temperature": _number(parameters, "temperature", float, 0.0, 2.0, 0.7),
        "max_tokens": _number(parameters, "max_tokens", int, 16, 8192, 512),
    }
    if backend == BACKEND_OPENAI:
        clean["vision"] = bool(parameters.get("vision", False))
        response_format = parameters.get("response_format") or "json_object"
        if response_format not in RESPONSE_FORMATS:
            raise JobError(f"response_format: choose one of {', '.join(RESPONSE_FORMATS)}")
        clean["response_format"] = response_format
        for key in ("price_per_1k_prompt", "price_per_1k_completion"):
            price = _number(parameters, key, Decimal, Decimal(0), Decimal(1000), Decimal(0))
            clean[key] = str(price)
    unknown = set(parameters) - set(clean) - {
        "vision", "response_format", "price_per_1k_prompt", "price_per_1k_completion",
    }
    if unknown:
        raise JobError(f"parameters: unknown key(s) {', '.join(sorted(unknown))}")
    return clean


def _clean_filters(filters: dict | None) -> dict:
    filters = dict(filters or {})
    unknown = set(filters) - set(selectors.FILTER_KEYS)
    if unknown:
        raise JobError(f"filters: unknown key(s) {', '.join(sorted(unknown))}")
    clean = {key: str(filters.get(key) or "").strip() for key in ("source", "license", "modality")}
    clean["limit"] = _number(filters, "limit", int, 1, 10_000_000, None)
    clean["only_new"] = bool(filters.get("only_new", True))
    return clean


def job_create(
    *,
    project: Project,
    task: str,
    backend: str,
    model: str = "",
    base_url: str = "",
    user=None,
    filters: dict | None = None,
    samples: int = 1,
    parameters: dict | None = None,
    template: PromptTemplate | None = None,
    token_cap: int | None = None,
    cost_cap_usd: Decimal | str | None = None,
    regenerates: dict[int, int] | None = None,
) -> GenerationJob:
    """Validate, choose the records, save the job and enqueue its run after commit.

    With `regenerates` ({record id: candidate id}) the job generates one new candidate for
    each of those records instead of the records the filters match (generation.regeneration).
    """
    if task not in medmax.TASKS:
        raise JobError(f"task: unknown task {task!r}; choose one of {', '.join(medmax.TASKS)}")
    if backend not in dict(BACKEND_CHOICES):
        raise JobError(f"backend: unknown backend {backend!r}")
    samples = _number({"samples": samples}, "samples", int, 1, MAX_SAMPLES, 1)
    parameters = _clean_parameters(backend, parameters)
    filters = _clean_filters(filters)
    token_cap = _number({"token_cap": token_cap}, "token_cap", int, 1, 10**12, None)
    cost_cap_usd = _number({"cost_cap_usd": cost_cap_usd}, "cost_cap_usd", Decimal, Decimal("0.0001"), Decimal(10**6), None)
    model, base_url = model.strip(), base_url.strip()
    try:
        built = backend_for(backend=backend, model=model, base_url=base_url, parameters=parameters)
        # Named on the job whichever backend it is (the local model's file, the server's model).
        model = model or getattr(built, "model", "") or ""
    except BackendError as exc:
        field = "base_url" if "base URL" in str(exc) else "backend"
        raise JobError(f"{field}: {exc}") from None

    templates_ensure_defaults()
    if backend == BACKEND_TEMPLATE:
        template = None
    else:
        template = template or selectors.template_latest(project=project, task=task)
        if template.task != task or template.project_id not in (None, project.pk):
            raise JobError(f"template: {template} is not a {task} template of this project")
    template_ref, _version = template_ref_for(task=task, template=template)

    if regenerates:
        samples = 1
        matched = selectors.records_matching(project=project, filters={}).filter(
            id__in=list(regenerates))
        filters["only_new"] = False  # these records were generated already: that is the point
    else:
        matched = selectors.records_matching(project=project, filters=filters)
    vision = backend_sees_images(backend=backend, parameters=parameters)
    usable = selectors.records_usable(records=matched, task=task, vision=vision)
    skipped = matched.count() - usable.count()
    if filters["only_new"]:
        usable = selectors.records_not_generated(records=usable, task=task, template_ref=template_ref)
    ids = list(usable.values_list("id", flat=True)[: filters["limit"]])
    chosen = set(ids)
    skip_note = _skip_note(task=task, backend=backend, vision=vision, skipped=skipped,
                           matched=matched)

    job = GenerationJob.objects.create(
        project=project, task=task, backend=backend, model=model, base_url=base_url,
        parameters=parameters, filters=filters, samples=samples,
        template=template, token_cap=token_cap, cost_cap_usd=cost_cap_usd, launched_by=user,
        record_ids=ids, total=len(ids) * samples, skipped=skipped, skip_note=skip_note[:300],
        regenerates={str(r): c for r, c in (regenerates or {}).items() if r in chosen},
    )
    _enqueue_chunks(job.pk, [chunk.pk for chunk in chunks.chunks_create(job=job)])
    log.info("generation job %s created by %s: %s records x %s", job.pk, user, len(ids), samples)
    return job


def backend_sees_images(*, backend: str, parameters: dict) -> bool:
    """Only an OpenAI-compatible server with vision on is sent the image; the local model and
    the templates read text alone."""
    return backend == BACKEND_OPENAI and bool(parameters.get("vision"))


def _skip_note(*, task, backend, vision, skipped, matched) -> str:
    """Why matching records were left out, in words a job page can show."""
    if not skipped:
        return ""
    note = f"{skipped} matching record(s) skipped: no image, or {record_missing(task, {})}"
    image_only = 0 if vision else selectors.records_image_only(records=matched).count()
    if image_only and task in VISION_TASKS:
        note += (f"; {image_only} of them have an image and no text (e.g. DICOM studies): only a "
                 f"vision-capable backend (openai with vision on) can write from the image, and "
                 f"the {backend} backend reads text only")
    return note


def _enqueue_chunks(job_id: int, chunk_ids: list[int]) -> None:
    """One task per chunk, sent once the transaction commits: as many workers as there are
    chunks may join the job."""
    from medmax_review.generation.tasks import run_job

    for chunk_id in chunk_ids:
        run_job.delay_on_commit(job_id, chunk_id)


# ---------------------------------------------------------------------------------------------
# Controlling jobs


def job_cancel(*, job: GenerationJob) -> bool:
    """Start no new request; the requests in flight (in every chunk) finish and are saved,
    and so is everything generated before."""
    changed = GenerationJob.objects.filter(
        pk=job.pk, status__in=[GenerationJob.PENDING, GenerationJob.RUNNING]
    ).update(status=GenerationJob.CANCELLED, finished_at=timezone.now())
    return changed == 1


def job_resume(
    *, job: GenerationJob, token_cap: int | None = None, cost_cap_usd: Decimal | None = None
) -> bool:
    """Queue a cancelled or failed job (or one whose worker died) to finish what is left."""
    resumable = Q(status__in=[GenerationJob.CANCELLED, GenerationJob.FAILED]) | Q(
        status=GenerationJob.RUNNING,
        heartbeat_at__lt=timezone.now() - timedelta(seconds=settings.GENERATION_STALE_SECONDS),
    )
    changes = {"status": GenerationJob.PENDING, "error": "", "finished_at": None}
    if token_cap is not None:
        changes["token_cap"] = token_cap
    if cost_cap_usd is not None:
        changes["cost_cap_usd"] = cost_cap_usd
    with transaction.atomic():
        changed = GenerationJob.objects.filter(resumable, pk=job.pk).update(**changes)
        if changed:
            _enqueue_chunks(job.pk, chunks.chunks_reopen(job=job))
    return changed == 1


def job_retry_failed(*, job: GenerationJob) -> int:
    """Discard this job's unusable outputs and queue the job to generate those items again."""
    if job.status in (GenerationJob.PENDING, GenerationJob.RUNNING):
        raise JobError("status: wait until the job stops before retrying its failed items")
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        failed = Candidate.objects.filter(job=locked, status=GENERATION_ERROR)
        count = failed.count()
        failed.delete()
        GenerationJob.objects.filter(pk=job.pk).update(
            failed=F("failed") - count, status=GenerationJob.PENDING, error="", finished_at=None
        )
        _enqueue_chunks(job.pk, chunks.chunks_reopen(job=job))
    return count


# ---------------------------------------------------------------------------------------------
# Running jobs


def job_run(*, job_id: int, chunk_id: int | None = None) -> str:
    """Run (or go on with) a job, starting from `chunk_id` if it is free, then every chunk of
    the job this worker can claim. Returns RAN, BUSY (the chunk asked for, or with none asked
    for every open chunk, is held by another live worker) or NOTHING_TO_DO."""
    if chunks.job_start(job_id=job_id) != GenerationJob.RUNNING:
        return NOTHING_TO_DO
    job = GenerationJob.objects.select_related("project", "template").get(pk=job_id)
    if not job.chunks.exists():
        chunks.chunks_create(job=job)
    runner = runner_id()
    first = chunks.chunk_claim(job_id=job_id, runner=runner, prefer=chunk_id)
    if first is None:
        if chunks.job_complete(job_id=job_id):
            return RAN
        if chunk_id is not None and selectors.chunk_status(chunk_id=chunk_id) != GenerationChunk.RUNNING:
            return NOTHING_TO_DO  # done, and the rest is in other hands
        return BUSY
    try:
        backend = backend_for(
            backend=job.backend, model=job.model, base_url=job.base_url, parameters=job.parameters
        )
    except BackendError as exc:
        chunks.job_finish(job_id=job.pk, status=GenerationJob.FAILED, error=str(exc))
        chunks.chunks_release(runner=runner)
        chunks.job_let_go(job_id=job.pk)
        return RAN
    # A run that raises keeps its chunks and their last heartbeat: they go stale and are
    # taken over, as if its worker had died.
    JobRunner(job=job, backend=backend, runner=runner, first=first).run()
    return RAN


def jobs_resend() -> int:
    """Queue again the jobs whose messages were lost or whose workers all died (the job's
    heartbeat is its live workers'). One message a job: the worker it reaches claims the
    job's open chunks one after another, so a job waiting in a long queue does not gather a
    message per chunk every sweep."""
    ids = lease_resend_ids(model=GenerationJob, pending=GenerationJob.PENDING,
                           running=GenerationJob.RUNNING,
                           stale_seconds=settings.GENERATION_STALE_SECONDS)
    from medmax_review.generation.tasks import run_job

    for job_id in ids:
        run_job.delay(job_id)
    return len(ids)
