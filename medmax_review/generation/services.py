"""Generation: prompt templates, and jobs that turn source records into candidates.

A job snapshots its record ids at launch. Running it is safe to repeat: one candidate per
(record, task, template_ref, sample_index) is enforced by the database, items that already
have a candidate are skipped, and counters move in the same transaction as the candidates they
count, so a worker killed mid-batch loses nothing and duplicates nothing.
"""

import logging
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from medmax_review.core import medmax
from medmax_review.core.audit import audit_record
from medmax_review.core.leases import lease_claim, lease_resend_ids
from medmax_review.core.models import AuditEvent
from medmax_review.generation import selectors
from medmax_review.generation.backends import (
    Backend,
    BackendError,
    BackendUnavailable,
    GenerationRequest,
    GenerationResult,
    backend_for,
)
from medmax_review.generation.backends.openai_compat import RESPONSE_FORMATS
from medmax_review.generation.models import (
    BACKEND_CHOICES,
    BACKEND_OPENAI,
    BACKEND_TEMPLATE,
    GenerationJob,
    PromptTemplate,
)
from medmax_review.generation.prompts import (
    DEFAULT_TEMPLATES,
    IMAGE_ONLY_NOTE,
    IMAGE_POSITION,
    OUTPUT_SCHEMA,
    SYSTEM_PROMPT,
    VISION_TASKS,
    OutputError,
    output_parse,
    record_fields,
    record_has_text,
    record_missing,
    template_fields,
    template_render,
)
from medmax_review.projects.models import Project
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.review.models import GENERATION_ERROR, Candidate
from medmax_review.sources.images import image_path
from medmax_review.sources.models import SourceRecord

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE_NAME = "default"
# The template backend writes no prompt; its own phrase lists are versioned here instead.
TEMPLATE_BACKEND_NAME = "medmax-template"
TEMPLATE_BACKEND_VERSION = 1
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


def _template_ref(*, task: str, template: PromptTemplate | None) -> tuple[str, int]:
    if template is None:
        return f"{task}/{TEMPLATE_BACKEND_NAME}@v{TEMPLATE_BACKEND_VERSION}", TEMPLATE_BACKEND_VERSION
    return template.ref, template.version


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
    template_ref, _version = _template_ref(task=task, template=template)

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
    _enqueue_run(job.pk)
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


def _enqueue_run(job_id: int) -> None:
    from medmax_review.generation.tasks import run_job

    run_job.delay_on_commit(job_id)


# ---------------------------------------------------------------------------------------------
# Controlling jobs


def job_claim(*, job_id: int) -> bool:
    """Take the job for this worker: only a pending job, or a running one whose worker went
    silent, can be taken, and the conditional UPDATE lets exactly one worker win."""
    return lease_claim(
        model=GenerationJob, pk=job_id, pending=GenerationJob.PENDING,
        running=GenerationJob.RUNNING, stale_seconds=settings.GENERATION_STALE_SECONDS,
        error="", finished_at=None, in_flight=0, in_flight_at_stop=None, eta_seconds=None,
        eta_at=None, started_at=Coalesce(F("started_at"), Value(timezone.now())),
    ) is not None


def job_cancel(*, job: GenerationJob) -> bool:
    """Stop after the batch in flight; what was generated so far is kept."""
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
    changed = GenerationJob.objects.filter(resumable, pk=job.pk).update(**changes)
    if changed:
        _enqueue_run(job.pk)
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
        _enqueue_run(job.pk)
    return count


def _job_finish(*, job_id: int, status: str, error: str = "") -> None:
    # Only a job still running is finished: a cancel that came meanwhile wins.
    GenerationJob.objects.filter(pk=job_id, status=GenerationJob.RUNNING).update(
        status=status, error=error, finished_at=timezone.now()
    )


# ---------------------------------------------------------------------------------------------
# Running jobs


@dataclass(frozen=True)
class _Item:
    record: SourceRecord
    sample_index: int
    request: GenerationRequest


def job_run(*, job_id: int) -> str:
    """Run (or go on with) a job. Returns RAN, BUSY (another worker holds it) or NOTHING_TO_DO."""
    if not job_claim(job_id=job_id):
        status = GenerationJob.objects.filter(pk=job_id).values_list("status", flat=True).first()
        return BUSY if status == GenerationJob.RUNNING else NOTHING_TO_DO
    job = GenerationJob.objects.select_related("project", "template").get(pk=job_id)
    try:
        backend = backend_for(
            backend=job.backend, model=job.model, base_url=job.base_url, parameters=job.parameters
        )
    except BackendError as exc:
        _job_finish(job_id=job.pk, status=GenerationJob.FAILED, error=str(exc))
        return RAN
    try:
        _JobRunner(job=job, backend=backend).run()
    finally:
        # This worker has let go: a stopped job shows no heartbeat. A job still marked running
        # (the run raised) keeps its last one, so it goes stale and can be taken over.
        GenerationJob.objects.filter(pk=job.pk).exclude(status=GenerationJob.RUNNING).update(
            heartbeat_at=None
        )
    return RAN


def _cap_problem(job: GenerationJob) -> str:
    tokens = job.prompt_tokens + job.completion_tokens
    if job.token_cap is not None and tokens >= job.token_cap:
        return f"token cap reached: {tokens} tokens used, cap {job.token_cap}; raise it and resume"
    if job.cost_cap_usd is not None and job.cost_usd >= job.cost_cap_usd:
        return (
            f"cost cap reached: ${job.cost_usd:.4f} spent, cap ${job.cost_cap_usd:.4f}; "
            "raise it and resume"
        )
    return ""


ETA_WEIGHT = 0.3  # how much one new reading moves the time-left estimate
STATUS_POLL_SECONDS = 0.25  # how soon a running job notices a cancel


class _JobRunner:
    def __init__(self, *, job: GenerationJob, backend: Backend):
        self.job = job
        self.backend = backend
        self.progress_seen = job.done + job.failed
        self.finished_here = 0
        self.started = self.last_beat = time.monotonic()
        self.template_ref, self.template_version = _template_ref(task=job.task, template=job.template)
        priced = job.backend == BACKEND_OPENAI
        self.price_prompt = Decimal(job.parameters.get("price_per_1k_prompt", "0")) if priced else Decimal(0)
        self.price_completion = (
            Decimal(job.parameters.get("price_per_1k_completion", "0")) if priced else Decimal(0)
        )

    def run(self) -> None:
        """Keep the backend's requests in flight all the time: each result is saved as it
        arrives and the next request starts as soon as one ends, so progress moves item by
        item. A cancel (or a cap, or a server that went away) stops new requests at once; the
        requests already in flight finish and are saved."""
        job = self.job
        # In flight at once: the backend's concurrency, at most a batch (a cap or a cancel
        # lets at most this many requests run past it).
        window = max(1, min(self.backend.concurrency, settings.GENERATION_BATCH_SIZE))
        interval = max(0.5, min(2.0, settings.GENERATION_STALE_SECONDS / 3))
        pending = self._items()
        in_flight: dict = {}
        stop, stop_status = "", ""
        with ThreadPoolExecutor(max_workers=window) as pool:
            while True:
                while not stop and len(in_flight) < window:
                    item = next(pending, None)
                    if item is None:
                        break
                    in_flight[pool.submit(self._generate, item)] = item
                if not in_flight:
                    break
                # Woken by each result, and often enough to see a cancel within a moment.
                done, _ = wait(in_flight, timeout=STATUS_POLL_SECONDS, return_when=FIRST_COMPLETED)
                results = [(in_flight.pop(future), future.result()) for future in done]
                if results:
                    self._save([i for i, _ in results], [o for _, o in results])
                    unavailable = next(
                        (o for _, o in results if isinstance(o, BackendUnavailable)), None)
                    if unavailable and not stop:
                        stop, stop_status = (f"stopped: {unavailable}; resume when the server "
                                             "is back"), GenerationJob.FAILED
                current = self._beat(in_flight=len(in_flight), saved=bool(results),
                                     interval=interval)
                if current is None and not stop:
                    stop = "cancelled"  # or taken over: either way, start nothing more
                    GenerationJob.objects.filter(pk=job.pk).update(
                        in_flight_at_stop=len(in_flight))
                elif current is not None and not stop and results and _cap_problem(current):
                    stop, stop_status = "cap", GenerationJob.FAILED
        if stop_status:
            error = _cap_problem(GenerationJob.objects.get(pk=job.pk)) if stop == "cap" else stop
            _job_finish(job_id=job.pk, status=stop_status, error=error)
        elif not stop:
            _job_finish(job_id=job.pk, status=GenerationJob.DONE)
        else:
            log.info("generation job %s stopped: %s", job.pk, stop)

    def _items(self):
        """The job's items not generated yet, read a chunk of records at a time."""
        ids = self.job.record_ids
        per_chunk = max(1, settings.GENERATION_BATCH_SIZE // self.job.samples)
        for start in range(0, len(ids), per_chunk):
            yield from self._pending_items(ids[start : start + per_chunk])

    def _beat(self, *, in_flight: int, saved: bool, interval: float) -> GenerationJob | None:
        """The job as it now stands, or None when it is no longer this worker's to run
        (cancelled, or taken over). After a save, or every `interval`, also the heartbeat,
        the requests in flight and the time-left estimate."""
        job = GenerationJob.objects.filter(pk=self.job.pk, status=GenerationJob.RUNNING).first()
        if job is None:
            return None
        if not saved and time.monotonic() - self.last_beat < interval:
            return job
        self.last_beat = time.monotonic()
        now = timezone.now()
        changes = {"heartbeat_at": now, "in_flight": in_flight}
        eta = self._eta(job, now)
        if eta is not None:
            changes.update(eta_seconds=eta, eta_at=now)
        GenerationJob.objects.filter(pk=job.pk, status=GenerationJob.RUNNING).update(**changes)
        return job

    def _eta(self, job: GenerationJob, now) -> float | None:
        """Seconds left, damped: the rate this run has kept so far, blended with the last
        estimate, and never more than the last estimate less the time since (so it does not
        grow while work is being done)."""
        finished = job.done + job.failed
        gained = finished - self.progress_seen
        self.progress_seen = finished
        self.finished_here += gained
        elapsed = time.monotonic() - self.started
        if self.finished_here <= 0 or elapsed <= 0:
            return None
        computed = max(job.total - finished, 0) / (self.finished_here / elapsed)
        if job.eta_seconds is None or job.eta_at is None:
            return computed
        previous = max(job.eta_seconds - (now - job.eta_at).total_seconds(), 0.0)
        if gained <= 0:
            return previous
        return min(previous, ETA_WEIGHT * computed + (1 - ETA_WEIGHT) * previous)

    def _pending_items(self, record_ids: list[int]) -> list[_Item]:
        job = self.job
        records = SourceRecord.objects.filter(pk__in=record_ids).select_related("image").order_by("id")
        if job.regenerates:
            return self._regeneration_items(records)
        existing = set(
            Candidate.objects.filter(
                record_id__in=record_ids, task=job.task, template_ref=self.template_ref
            ).values_list("record_id", "sample_index")
        )
        return [
            _Item(record, sample, self._request(record, sample))
            for record in records
            for sample in range(job.samples)
            if (record.pk, sample) not in existing
        ]

    def _regeneration_items(self, records) -> list[_Item]:
        """One item per record this job has not generated for yet, as the next sample of its
        (task, template): the candidates already there keep theirs, and a repeated or resumed
        run finds this job's own candidate and skips the record."""
        job = self.job
        ids = [r.pk for r in records]
        done = set(Candidate.objects.filter(job=job, record_id__in=ids)
                   .values_list("record_id", flat=True))
        taken = dict(
            Candidate.objects.filter(record_id__in=ids, task=job.task,
                                     template_ref=self.template_ref)
            .values("record_id").annotate(top=Max("sample_index")).values_list("record_id", "top")
        )
        items = []
        for record in records:
            if record.pk not in done:
                sample = taken.get(record.pk, -1) + 1
                items.append(_Item(record, sample, self._request(record, sample)))
        return items

    def _request(self, record: SourceRecord, sample: int) -> GenerationRequest:
        job = self.job
        fields = record_fields(record)
        messages = []
        if job.template is not None:
            prompt = template_render(job.template.text, fields)
            if not record_has_text(fields):
                prompt = f"{prompt}\n{IMAGE_ONLY_NOTE}"
            messages = [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": prompt},
            ]
        return GenerationRequest(
            messages=messages, task=job.task, fields=fields,
            temperature=job.parameters.get("temperature", 0.7),
            max_tokens=job.parameters.get("max_tokens", 512),
            json_schema=OUTPUT_SCHEMA, seed=sample,
        )

    def _generate(self, item: _Item) -> GenerationResult | Exception:
        """Runs in a pool thread: network only, no database."""
        request = item.request
        try:
            if self.job.parameters.get("vision") and item.record.image is not None:
                asset = item.record.image
                request = replace(
                    request,
                    image=image_path(asset).read_bytes(),
                    image_mime=f"image/{asset.format.lower()}",
                )
            return self.backend.generate(request)
        except (BackendError, BackendUnavailable) as exc:
            return exc
        except Exception as exc:  # an unexpected failure is recorded on its item, not lost
            log.exception("generation job %s: item failed", self.job.pk)
            return BackendError(f"{type(exc).__name__}: {exc}")

    def _spec(self, item: _Item, outcome: GenerationResult | BackendError) -> CandidateSpec:
        job = self.job
        instruction = response = error = raw = ""
        prompt_tokens = completion_tokens = 0
        model, finish_reason = self.backend.model, ""
        if isinstance(outcome, BackendError):
            error = str(outcome)
        else:
            raw, model, finish_reason = outcome.text, outcome.model or model, outcome.finish_reason
            prompt_tokens, completion_tokens = outcome.prompt_tokens, outcome.completion_tokens
            try:
                instruction, response = output_parse(
                    task=job.task, text=outcome.text, finish_reason=outcome.finish_reason
                )
            except OutputError as exc:
                error = str(exc)
        cost = (prompt_tokens * self.price_prompt + completion_tokens * self.price_completion) / 1000
        replaces = job.regenerates.get(str(item.record.pk))
        return CandidateSpec(
            record_id=item.record.pk,
            task=job.task,
            instruction=instruction,
            response=response,
            image_position=IMAGE_POSITION[job.task],
            template_ref=self.template_ref,
            template_id=job.template_id,
            template_version=self.template_version,
            sample_index=item.sample_index,
            job_id=job.pk,
            provenance={
                "backend": job.backend,
                "model": model,
                "parameters": job.parameters,
                "template_ref": self.template_ref,
                "template_version": self.template_version,
                "sample_index": item.sample_index,
                "finish_reason": finish_reason,
                "cost_usd": str(cost.quantize(Decimal("0.000001"))),
                "generated_at": timezone.now().isoformat(),
                **({"regenerated_from": replaces} if replaces else {}),
            },
            regenerated_from_id=replaces,
            raw_output=raw,
            generation_error=error,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            credential=item.record.is_credentialed,
        )

    def _save(self, items: list[_Item], outcomes: list) -> None:
        specs = [
            self._spec(item, outcome)
            for item, outcome in zip(items, outcomes, strict=True)
            if outcome is not None and not isinstance(outcome, BackendUnavailable)
        ]
        with transaction.atomic():
            created = candidates_create(project=self.job.project, specs=specs)
            failed = sum(1 for c in created if c.generation_error)
            prompt = sum(c.prompt_tokens for c in created)
            completion = sum(c.completion_tokens for c in created)
            cost = sum((Decimal(c.provenance["cost_usd"]) for c in created), Decimal(0))
            GenerationJob.objects.filter(pk=self.job.pk).update(
                done=F("done") + len(created) - failed,
                failed=F("failed") + failed,
                prompt_tokens=F("prompt_tokens") + prompt,
                completion_tokens=F("completion_tokens") + completion,
                cost_usd=F("cost_usd") + cost,
                heartbeat_at=timezone.now(),
            )
            scored = [c.pk for c in created if not c.generation_error]
            if scored:
                from medmax_review.scoring.tasks import score_candidates

                score_candidates.delay_on_commit(scored)


def jobs_resend() -> int:
    """Queue again the jobs whose message was lost or whose worker died."""
    ids = lease_resend_ids(model=GenerationJob, pending=GenerationJob.PENDING,
                           running=GenerationJob.RUNNING,
                           stale_seconds=settings.GENERATION_STALE_SECONDS)
    for job_id in ids:
        _enqueue_run(job_id)
    return len(ids)
