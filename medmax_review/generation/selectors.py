"""Reads for generation: record selection, job progress and chunks, templates."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from medmax_review.generation.models import GenerationChunk, GenerationJob, PromptTemplate
from medmax_review.generation.prompts import (
    ALLOWED_FIELDS,
    SOURCE_TEXT_FIELDS,
    TASK_NEEDS,
    VISION_TASKS,
)
from medmax_review.projects.models import Project
from medmax_review.review.models import GENERATION_ERROR, Candidate
from medmax_review.sources.models import SourceRecord

FILTER_KEYS = ("source", "license", "modality", "limit", "only_new")


def records_matching(*, project: Project, filters: dict) -> QuerySet[SourceRecord]:
    """Records of the project that pass the source / licence / modality filters, by id."""
    records = SourceRecord.objects.filter(project=project)
    for key in ("source", "license", "modality"):
        value = (filters.get(key) or "").strip()
        if value:
            records = records.filter(**{f"{key}__iexact": value})
    return records.order_by("id")


def records_usable(
    *, records: QuerySet[SourceRecord], task: str, vision: bool = False
) -> QuerySet[SourceRecord]:
    """Those with an image and the text the task needs; with a vision-capable backend, any
    record with an image for the tasks it can write from the image alone."""
    if vision and task in VISION_TASKS:
        return records.filter(image__isnull=False)
    needs = Q()
    for group in TASK_NEEDS[task]:
        has_group = Q()
        for name in group:
            has_group &= ~Q(**{name: ""})
        needs |= has_group
    return records.filter(needs, image__isnull=False)


def records_image_only(*, records: QuerySet[SourceRecord]) -> QuerySet[SourceRecord]:
    """Records with an image and no source text (DICOM studies): only a vision model can
    write from them."""
    return records.filter(image__isnull=False, **{name: "" for name in SOURCE_TEXT_FIELDS})


def records_not_generated(
    *, records: QuerySet[SourceRecord], task: str, template_ref: str
) -> QuerySet[SourceRecord]:
    done = Candidate.objects.filter(record=OuterRef("pk"), task=task, template_ref=template_ref)
    return records.filter(~Exists(done))


def jobs_for_project(*, project: Project) -> QuerySet[GenerationJob]:
    return GenerationJob.objects.filter(project=project).select_related("template", "launched_by")


@dataclass(frozen=True)
class JobProgress:
    total: int
    done: int
    failed: int
    percent: int
    rate_per_minute: float | None
    seconds_left: int | None
    active: bool


def job_progress(*, job: GenerationJob) -> JobProgress:
    finished = job.done + job.failed
    percent = int(100 * finished / job.total) if job.total else 100
    rate = seconds_left = None
    active = job.status in (GenerationJob.PENDING, GenerationJob.RUNNING)
    if job.started_at and finished:
        end = job.finished_at if not active and job.finished_at else timezone.now()
        elapsed = max((end - job.started_at).total_seconds(), 0.001)
        rate = finished / elapsed * 60
    if active and job.eta_seconds is not None and job.eta_at is not None:
        # The worker's damped estimate, counted down since it was made.
        seconds_left = int(max(job.eta_seconds - (timezone.now() - job.eta_at).total_seconds(), 0))
    return JobProgress(job.total, job.done, job.failed, percent, rate, seconds_left, active)


def job_failed_candidates(*, job: GenerationJob, limit: int = 50) -> QuerySet[Candidate]:
    return (
        Candidate.objects.filter(job=job, status=GENERATION_ERROR)
        .select_related("record")
        .order_by("id")[:limit]
    )


def job_is_stopping(*, job: GenerationJob, stale_seconds: int) -> bool:
    """Cancelled, but its worker is still saving the item it had in flight."""
    if job.status != GenerationJob.CANCELLED or job.heartbeat_at is None:
        return False
    return job.heartbeat_at >= timezone.now() - timedelta(seconds=stale_seconds)


def job_is_stale(*, job: GenerationJob, stale_seconds: int) -> bool:
    if job.status != GenerationJob.RUNNING or job.heartbeat_at is None:
        return False
    return job.heartbeat_at < timezone.now() - timedelta(seconds=stale_seconds)


def templates_for_project(*, project: Project) -> QuerySet[PromptTemplate]:
    """The shipped defaults and the project's own versions, newest version first."""
    return PromptTemplate.objects.filter(Q(project=project) | Q(project__isnull=True)).order_by(
        "task", "name", "-version"
    )


def template_latest(*, project: Project, task: str, name: str = "default") -> PromptTemplate | None:
    return templates_for_project(project=project).filter(task=task, name=name).first()


def template_fields_list() -> str:
    return ", ".join("{" + name + "}" for name in ALLOWED_FIELDS)


def template_by_ref(*, project: Project, ref: str) -> PromptTemplate | None:
    """The template a ref names ("vqa/default@v2"), the project's own before a shipped one."""
    task, _, rest = ref.partition("/")
    name, _, version = rest.rpartition("@v")
    if not (task and name and version.isdigit()):
        return None
    return (
        templates_for_project(project=project)
        .filter(task=task, name=name, version=int(version))
        .order_by(F("project").asc(nulls_last=True)).first()
    )


def job_chunks_elsewhere(*, job_id: int, runner: str, stale_seconds: int) -> list[tuple[str, int]]:
    """(runner, requests in flight) of each chunk of the job that another live worker runs."""
    alive = timezone.now() - timedelta(seconds=stale_seconds)
    return list(
        GenerationChunk.objects.filter(job_id=job_id, status=GenerationChunk.RUNNING,
                                       heartbeat_at__gte=alive)
        .exclude(runner=runner).values_list("runner", "in_flight")
    )


def chunk_status(*, chunk_id: int) -> str | None:
    return GenerationChunk.objects.filter(pk=chunk_id).values_list("status", flat=True).first()


def job_is_cancelled(*, job_id: int) -> bool:
    return GenerationJob.objects.filter(pk=job_id, status=GenerationJob.CANCELLED).exists()
