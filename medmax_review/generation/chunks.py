"""A job's chunks: slices of its records, each a task and a lease of its own, so several
workers share one job. The job's status follows from its chunks: running once one is claimed,
done once every chunk is done.

Every write here is one conditional UPDATE: which worker holds a chunk, and whether a job is
finished, is decided by the database, never by a value read first and written back.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from medmax_review.core.leases import lease_claim
from medmax_review.generation.models import GenerationChunk, GenerationJob


def chunk_bounds(*, records: int, size: int) -> list[tuple[int, int]]:
    """(start, stop) positions of each chunk; a job without records still has one (empty)
    chunk, so running it marks it done like any other."""
    size = max(1, size)
    return [(start, min(start + size, records)) for start in range(0, records, size)] or [(0, 0)]


def chunks_create(*, job: GenerationJob) -> list[GenerationChunk]:
    """The job's chunks, created once (a job from before chunks gets them when it first runs)."""
    bounds = chunk_bounds(records=len(job.record_ids), size=settings.GENERATION_CHUNK_SIZE)
    GenerationChunk.objects.bulk_create(
        [GenerationChunk(job=job, index=i, start=a, stop=b) for i, (a, b) in enumerate(bounds)],
        ignore_conflicts=True,  # two workers creating a legacy job's chunks at once
    )
    return list(GenerationChunk.objects.filter(job=job).order_by("index"))


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.GENERATION_STALE_SECONDS)


def chunk_claim(*, job_id: int, runner: str, prefer: int | None = None) -> GenerationChunk | None:
    """Take a chunk of the job for `runner`: `prefer` if it can be taken, else the first
    pending one, else one whose worker went silent. None when every chunk is done or held by
    a live worker. Exactly one of several workers asking for the same chunk gets it."""
    claimable = list(
        GenerationChunk.objects.filter(job_id=job_id).filter(
            Q(status=GenerationChunk.PENDING)
            | Q(status=GenerationChunk.RUNNING, heartbeat_at__lt=_stale_before())
            | Q(status=GenerationChunk.RUNNING, heartbeat_at__isnull=True))
        .order_by("index").values_list("pk", flat=True)
    )
    if prefer in claimable:
        claimable.remove(prefer)
        claimable.insert(0, prefer)
    for pk in claimable:
        if lease_claim(model=GenerationChunk, pk=pk, pending=GenerationChunk.PENDING,
                       running=GenerationChunk.RUNNING,
                       stale_seconds=settings.GENERATION_STALE_SECONDS,
                       runner=runner, in_flight=0) is not None:
            return GenerationChunk.objects.get(pk=pk)
    return None


def chunks_beat(*, runner: str, in_flight: dict[int, int]) -> bool:
    """Renew the lease of each chunk `runner` holds, with its requests in flight; False when
    one of them is no longer its own (taken over after it looked dead)."""
    now = timezone.now()
    held = GenerationChunk.objects.filter(runner=runner, status=GenerationChunk.RUNNING)
    return all(
        held.filter(pk=pk).update(heartbeat_at=now, in_flight=count)
        for pk, count in in_flight.items()
    )


def chunks_finish(*, runner: str, chunk_ids: list[int]) -> None:
    """Every item of these chunks is saved."""
    GenerationChunk.objects.filter(pk__in=chunk_ids, runner=runner,
                                   status=GenerationChunk.RUNNING).update(
        status=GenerationChunk.DONE, heartbeat_at=None, in_flight=0)


def chunks_release(*, runner: str) -> None:
    """Let go of what `runner` still holds (it stopped early): the chunks are pending again,
    for a resume or another worker."""
    GenerationChunk.objects.filter(runner=runner, status=GenerationChunk.RUNNING).update(
        status=GenerationChunk.PENDING, heartbeat_at=None, in_flight=0)


def chunks_reopen(*, job: GenerationJob) -> list[int]:
    """Before a resume or a retry: every chunk not held by a live worker is pending again (a
    done chunk whose failed items were discarded has work again; one that has none finds
    that out with one query). The ids of the reopened chunks."""
    reopen = GenerationChunk.objects.filter(job=job).exclude(
        status=GenerationChunk.RUNNING, heartbeat_at__gte=_stale_before())
    ids = list(reopen.values_list("pk", flat=True))
    reopen.update(status=GenerationChunk.PENDING, heartbeat_at=None, in_flight=0, runner="")
    return ids


def _running_in_flight():
    """The requests a job's running chunks have open, for one UPDATE of the job row."""
    return Coalesce(Subquery(
        GenerationChunk.objects.filter(job=OuterRef("pk"), status=GenerationChunk.RUNNING)
        .values("job").annotate(total=Sum("in_flight")).values("total")[:1]
    ), Value(0))


def job_start(*, job_id: int) -> str | None:
    """A pending job becomes running (its start time kept from the first run); the job's
    status afterwards, None if it does not exist."""
    GenerationJob.objects.filter(pk=job_id, status=GenerationJob.PENDING).update(
        status=GenerationJob.RUNNING, heartbeat_at=timezone.now(), error="", finished_at=None,
        in_flight=0, in_flight_at_stop=None, eta_seconds=None, eta_at=None,
        started_at=Coalesce(F("started_at"), Value(timezone.now())),
    )
    return GenerationJob.objects.filter(pk=job_id).values_list("status", flat=True).first()


def job_beat(*, job_id: int, **changes) -> bool:
    """The job's heartbeat and requests in flight (over all its chunks); False once it is no
    longer running (cancelled, failed, or finished by another worker)."""
    return bool(GenerationJob.objects.filter(pk=job_id, status=GenerationJob.RUNNING).update(
        heartbeat_at=timezone.now(), in_flight=_running_in_flight(), **changes))


def job_stopped_with(*, job_id: int, in_flight: int) -> None:
    """A worker saw the cancel with `in_flight` requests open: the page says how many in all."""
    GenerationJob.objects.filter(pk=job_id).update(
        in_flight_at_stop=Coalesce(F("in_flight_at_stop"), Value(0)) + in_flight)


def job_finish(*, job_id: int, status: str, error: str = "") -> bool:
    """Fail (or finish) a running job; only the first worker to do so records its error, and
    a cancel that came meanwhile wins."""
    return bool(GenerationJob.objects.filter(pk=job_id, status=GenerationJob.RUNNING).update(
        status=status, error=error, finished_at=timezone.now()))


def job_complete(*, job_id: int) -> bool:
    """Done, if every chunk is: the worker that saves the last item gets True."""
    unfinished = GenerationChunk.objects.filter(job=OuterRef("pk")).exclude(
        status=GenerationChunk.DONE)
    return bool(GenerationJob.objects.filter(pk=job_id, status=GenerationJob.RUNNING)
                .filter(~Exists(unfinished)).update(
                    status=GenerationJob.DONE, finished_at=timezone.now(), heartbeat_at=None,
                    in_flight=0, eta_seconds=None, eta_at=None))


def job_let_go(*, job_id: int) -> None:
    """After a worker stopped: a job no longer running, with no chunk held, shows no
    heartbeat (its page stops polling); its requests in flight are recounted."""
    held = GenerationChunk.objects.filter(job=OuterRef("pk"), status=GenerationChunk.RUNNING)
    GenerationJob.objects.filter(pk=job_id).update(in_flight=_running_in_flight())
    GenerationJob.objects.filter(pk=job_id).exclude(status=GenerationJob.RUNNING).filter(
        ~Exists(held)).update(heartbeat_at=None)
