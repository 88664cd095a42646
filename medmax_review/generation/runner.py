"""Running a job: one worker keeps the job's requests in flight, saving each result as it
arrives and starting the next request as soon as one ends, across the chunks it claims one
after another (chunks.py), so its pipeline never runs dry between chunks.

Several workers may run one job at once, each from a chunk of its own. With a server backend
the job's concurrency is what the server sees: the workers on a job split it between them
(`request_share`). The local model and the templates run inside each worker, so each worker
runs its own.
"""

import logging
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from medmax_review.generation import chunks, selectors
from medmax_review.generation.backends import (
    Backend,
    BackendError,
    BackendUnavailable,
    GenerationRequest,
    GenerationResult,
)
from medmax_review.generation.models import (
    BACKEND_OPENAI,
    GenerationChunk,
    GenerationJob,
    PromptTemplate,
)
from medmax_review.generation.prompts import (
    IMAGE_ONLY_NOTE,
    IMAGE_POSITION,
    OUTPUT_SCHEMA,
    SYSTEM_PROMPT,
    OutputError,
    output_parse,
    record_fields,
    record_has_text,
    template_render,
)
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.review.models import Candidate
from medmax_review.sources import image_files
from medmax_review.sources.models import SourceRecord

log = logging.getLogger(__name__)

# The template backend writes no prompt; its own phrase lists are versioned here instead.
TEMPLATE_BACKEND_NAME = "medmax-template"
TEMPLATE_BACKEND_VERSION = 1
ETA_WEIGHT = 0.3  # how much one new reading moves the time-left estimate
STATUS_POLL_SECONDS = 0.25  # how soon a running job notices a cancel
SETTLE_SECONDS = 0.02  # results this close together are saved in one commit (refilled at once)


SCORE_BATCH = 100  # candidates per scoring message
SCORE_EVERY_SECONDS = 2.0  # a slow job's candidates still reach scoring within this

def template_ref_for(*, task: str, template: PromptTemplate | None) -> tuple[str, int]:
    if template is None:
        return f"{task}/{TEMPLATE_BACKEND_NAME}@v{TEMPLATE_BACKEND_VERSION}", TEMPLATE_BACKEND_VERSION
    return template.ref, template.version


def request_share(*, limit: int, me: str, elsewhere: list[tuple[str, int]]) -> tuple[int, int]:
    """(share, may open now) for worker `me` among the workers on a job: the job's `limit`
    split evenly (the first workers in a fixed order take the remainder), and what `me` may
    have open now: its share, less what the others hold beyond theirs while their requests
    end. So the job's total stays within the limit but for one round trip of the database
    when a worker joins (the others see it at their next result)."""
    runners = sorted({runner for runner, _ in elsewhere} | {me})
    rank = runners.index(me)
    share = limit // len(runners) + (1 if rank < limit % len(runners) else 0)
    open_elsewhere = sum(count for _, count in elsewhere)
    return share, max(0, min(share, limit - open_elsewhere))


def cap_problem(job: GenerationJob) -> str:
    tokens = job.prompt_tokens + job.completion_tokens
    if job.token_cap is not None and tokens >= job.token_cap:
        return f"token cap reached: {tokens} tokens used, cap {job.token_cap}; raise it and resume"
    if job.cost_cap_usd is not None and job.cost_usd >= job.cost_cap_usd:
        return (
            f"cost cap reached: ${job.cost_usd:.4f} spent, cap ${job.cost_cap_usd:.4f}; "
            "raise it and resume"
        )
    return ""


def runner_id() -> str:
    """A name for one run of a worker, held on the chunks it claims."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class _Item:
    chunk_id: int
    record: SourceRecord
    sample_index: int
    request: GenerationRequest


class JobRunner:
    def __init__(self, *, job: GenerationJob, backend: Backend, runner: str,
                 first: GenerationChunk):
        self.job = job
        self.backend = backend
        self.runner = runner
        self.first = first
        # In flight at once: the backend's concurrency, at most a batch (a cap or a cancel
        # lets at most this many requests run past it).
        self.limit = max(1, min(backend.concurrency, settings.GENERATION_BATCH_SIZE))
        self.shared = job.backend == BACKEND_OPENAI
        self.window, self.window_at = self.limit, float("-inf")
        self.published = 0  # requests in flight as the chunk rows last said
        self.capped = job.token_cap is not None or job.cost_cap_usd is not None
        # The chunks this run holds, with the requests each has in flight now; those whose
        # items have all been sent finish once their last result is saved.
        self.held: dict[int, int] = {}
        self.sent_all: set[int] = set()
        self.unsaved: set[int] = set()
        self.progress_seen = job.done + job.failed
        self.to_score: list[int] = []  # saved, not yet sent to scoring
        self.score_sent_at = time.monotonic()
        self.finished_here = 0
        self.started = self.last_beat = time.monotonic()
        self.template_ref, self.template_version = template_ref_for(task=job.task,
                                                                   template=job.template)
        priced = job.backend == BACKEND_OPENAI
        self.price_prompt = Decimal(job.parameters.get("price_per_1k_prompt", "0")) if priced else Decimal(0)
        self.price_completion = (
            Decimal(job.parameters.get("price_per_1k_completion", "0")) if priced else Decimal(0)
        )

    def run(self) -> None:
        """Keep the requests in flight all the time. A cancel (or a cap, or a server that
        went away) stops new requests at once; the requests already in flight finish and are
        saved, and the chunks not finished are pending again."""
        job = self.job
        interval = max(0.5, min(2.0, settings.GENERATION_STALE_SECONDS / 3))
        pending = self._items()
        in_flight: dict = {}
        sent_everything = False
        stop, stop_status = "", ""
        if self.shared:
            self._announce()
        with ThreadPoolExecutor(max_workers=self.limit) as pool:

            def fill(window: int) -> bool:
                """Send items until `window` are in flight; False once there are no more."""
                while len(in_flight) < window:
                    item = next(pending, None)
                    if item is None:
                        return False
                    self.held[item.chunk_id] += 1
                    in_flight[pool.submit(self._generate, item)] = item
                return True

            while True:
                window = self._window()
                if window is None and not stop:
                    stop = "more workers on the job than requests it may keep open"
                if not stop and not sent_everything:
                    sent_everything = not fill(window)
                    if self.shared and sum(self.held.values()) > self.published:
                        # More open than the others know of (this run just started, or its
                        # share grew): say so now, not at the next save, so a worker joining
                        # meanwhile counts them.
                        self._publish()
                if not in_flight and (stop or sent_everything):
                    break
                if in_flight:
                    # Woken by each result, and often enough to see a cancel within a moment.
                    done, _ = wait(in_flight, timeout=STATUS_POLL_SECONDS,
                                   return_when=FIRST_COMPLETED)
                else:  # the others are still shrinking to their share
                    done = set()
                    time.sleep(STATUS_POLL_SECONDS)
                results = [(in_flight.pop(future), future.result()) for future in done]
                # Results that end a moment after these are taken in, refilled and saved with
                # them: requests sent together come back together, and one save each would hold
                # the others' refills behind its commit. At most a window's worth: against a
                # server that answers at once this would go on and never save.
                while results:
                    if not stop and not sent_everything and not self.capped:
                        # The next requests go out before these results are written, so the
                        # server is kept busy while this thread saves (with a cap, only once
                        # the saved results say it is not reached).
                        sent_everything = not fill(window)
                    if not in_flight or len(results) >= self.limit:
                        break
                    more, _ = wait(in_flight, timeout=SETTLE_SECONDS, return_when=FIRST_COMPLETED)
                    if not more:
                        break
                    results += [(in_flight.pop(future), future.result()) for future in more]
                for item, outcome in results:
                    self.held[item.chunk_id] -= 1
                    if isinstance(outcome, BackendUnavailable):
                        self.unsaved.add(item.chunk_id)  # not done: pending again
                if results:
                    # The results, the counters and the heartbeats in one commit: each commit
                    # waits for the disk, and this thread's time is what refills the pipeline.
                    with transaction.atomic():
                        self._save([i for i, _ in results], [o for _, o in results])
                        current = self._beat(saved=True, interval=interval)
                    self._finish_chunks()
                    unavailable = next(
                        (o for _, o in results if isinstance(o, BackendUnavailable)), None)
                    if unavailable and not stop:
                        stop, stop_status = (f"stopped: {unavailable}; resume when the server "
                                             "is back"), GenerationJob.FAILED
                else:
                    current = self._beat(saved=False, interval=interval)
                if current is None and not stop:
                    # Cancelled, failed by another worker, or a chunk taken over: either way,
                    # start nothing more.
                    stop = "stopped"
                    if selectors.job_is_cancelled(job_id=job.pk):
                        chunks.job_stopped_with(job_id=job.pk, in_flight=len(in_flight))
                elif current is not None and not stop and results and cap_problem(current):
                    stop, stop_status = "cap", GenerationJob.FAILED
        if stop_status:
            error = cap_problem(GenerationJob.objects.get(pk=job.pk)) if stop == "cap" else stop
            chunks.job_finish(job_id=job.pk, status=stop_status, error=error)
        elif not stop:
            chunks.job_complete(job_id=job.pk)
        else:
            log.info("generation job %s: run %s stopped: %s", job.pk, self.runner, stop)
        chunks.chunks_release(runner=self.runner)
        chunks.job_let_go(job_id=job.pk)
        with transaction.atomic():
            self._score_send(last=True)

    def _announce(self) -> None:
        """Before this run opens a request: say on its chunk's row the most it means to keep
        open, then look at the other workers again (the loop's first window is read afresh).
        Of two runs joining a job at the same instant, at least one then sees the other's
        announcement, so together they stay within the job's limit; the row says the actual
        count from the next heartbeat on."""
        window = self._window() or 0
        chunks.chunks_beat(runner=self.runner, in_flight={self.first.pk: window})
        self.published = window
        self.window_at = float("-inf")

    def _window(self) -> int | None:
        """How many requests may be open now; None when this run has no share of the job's
        requests at all (more workers on it than it may keep open): it lets its chunks go."""
        if not self.shared:
            return self.limit
        if time.monotonic() - self.window_at < STATUS_POLL_SECONDS:
            return self.window  # workers join or leave a job rarely: no query every result
        self.window_at = time.monotonic()
        share, now = request_share(
            limit=self.limit, me=self.runner,
            elsewhere=selectors.job_chunks_elsewhere(
                job_id=self.job.pk, runner=self.runner,
                stale_seconds=settings.GENERATION_STALE_SECONDS))
        self.window = now if share else None
        return self.window

    def _items(self):
        """The items not generated yet of each chunk this run claims, a batch of records at a
        time; the next chunk is claimed when the last item of the one before has been sent."""
        chunk = self.first
        per_batch = max(1, settings.GENERATION_BATCH_SIZE // self.job.samples)
        while chunk is not None:
            self.held[chunk.pk] = 0
            ids = self.job.record_ids[chunk.start : chunk.stop]
            for start in range(0, len(ids), per_batch):
                yield from self._pending_items(chunk.pk, ids[start : start + per_batch])
            self.sent_all.add(chunk.pk)
            self._finish_chunks()
            chunk = chunks.chunk_claim(job_id=self.job.pk, runner=self.runner)

    def _finish_chunks(self) -> None:
        finished = [pk for pk in self.sent_all - self.unsaved if self.held.get(pk) == 0]
        if finished:
            chunks.chunks_finish(runner=self.runner, chunk_ids=finished)
            for pk in finished:
                self.sent_all.discard(pk)
                del self.held[pk]

    def _beat(self, *, saved: bool, interval: float) -> GenerationJob | None:
        """The job as it now stands, or None when it is no longer this run's to go on with
        (cancelled, failed, or a chunk taken over). After a save, or every `interval`, also
        the heartbeats, the requests in flight and the time-left estimate."""
        job = GenerationJob.objects.filter(pk=self.job.pk, status=GenerationJob.RUNNING).first()
        if job is None:
            return None
        if not saved and time.monotonic() - self.last_beat < interval:
            return job
        self.last_beat = time.monotonic()
        if not self._publish():
            return None
        now = timezone.now()
        eta = self._eta(job, now)
        changes = {} if eta is None else {"eta_seconds": eta, "eta_at": now}
        chunks.job_beat(job_id=job.pk, **changes)
        return job

    def _publish(self) -> bool:
        """The chunks' heartbeats and requests in flight; False when one was taken over."""
        self.published = sum(self.held.values())
        return chunks.chunks_beat(runner=self.runner, in_flight=self.held)

    def _eta(self, job: GenerationJob, now) -> float | None:
        """Seconds left, damped: the rate the job has kept (all its workers) since this run
        began, blended with the last estimate, and never more than the last estimate less
        the time since (so it does not grow while work is being done)."""
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

    def _pending_items(self, chunk_id: int, record_ids: list[int]) -> list[_Item]:
        job = self.job
        records = SourceRecord.objects.filter(pk__in=record_ids).select_related("image").order_by("id")
        if job.regenerates:
            return self._regeneration_items(chunk_id, records)
        existing = set(
            Candidate.objects.filter(
                record_id__in=record_ids, task=job.task, template_ref=self.template_ref
            ).values_list("record_id", "sample_index")
        )
        return [
            _Item(chunk_id, record, sample, self._request(record, sample))
            for record in records
            for sample in range(job.samples)
            if (record.pk, sample) not in existing
        ]

    def _regeneration_items(self, chunk_id: int, records) -> list[_Item]:
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
                items.append(_Item(chunk_id, record, sample, self._request(record, sample)))
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
                    image=image_files.read(asset.file),
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
        # Inside the caller's transaction, with the heartbeats (no savepoint of its own).
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
        self.to_score += [c.pk for c in created if not c.generation_error]
        self._score_send()

    def _score_send(self, *, last: bool = False) -> None:
        """Send the saved candidates to scoring, after the commit that saves them, in batches:
        results are saved one by one as they finish, and a message per candidate would queue
        thousands of messages in front of everything else on a slow broker."""
        due = time.monotonic() - self.score_sent_at >= SCORE_EVERY_SECONDS
        if self.to_score and (last or due or len(self.to_score) >= SCORE_BATCH):
            from medmax_review.scoring.tasks import score_candidates

            # robust: a broker that is down costs the scoring message only (the unscored sweep
            # sends it again), not the generation run.
            transaction.on_commit(partial(score_candidates.delay, self.to_score), robust=True)
            self.to_score, self.score_sent_at = [], time.monotonic()

