"""Evaluation runs: create one, and run it (idempotent: each item is stored once, so a run
that was interrupted, or sent twice, goes on from the items it has)."""

import logging
import mimetypes

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from medmax_review.core.leases import lease_beat, lease_claim
from medmax_review.evaluation import scoring, selectors
from medmax_review.evaluation.models import EvaluationItem, EvaluationRun
from medmax_review.exports import changelog
from medmax_review.exports.build import dataset_version_folder
from medmax_review.exports.models import DatasetVersion
from medmax_review.generation.backends import (
    BackendError,
    BackendUnavailable,
    GenerationRequest,
    backend_for,
)
from medmax_review.generation.models import BACKEND_LOCAL, BACKEND_OPENAI
from medmax_review.sources import image_files

log = logging.getLogger(__name__)

EVAL_BACKENDS = (BACKEND_LOCAL, BACKEND_OPENAI)
ANSWER_SYSTEM = (
    "You are a medical expert answering questions about a medical image. Answer a yes/no "
    "question with yes or no, a multiple-choice question with the letter of the option, and "
    "any other question in a few words."
)
# Plain text answers: no JSON response format, short and deterministic.
ANSWER_PARAMETERS = {"response_format": "none"}
ANSWER_MAX_TOKENS = 96


class EvaluationError(ValueError):
    """A run cannot be created; the message names the field at fault."""


def _backend(backend: str, model: str, base_url: str = ""):
    if backend not in EVAL_BACKENDS:
        raise EvaluationError(f"backend: {backend!r} is not one of {', '.join(EVAL_BACKENDS)}")
    try:
        return backend_for(backend=backend, model=model, base_url=base_url,
                           parameters=ANSWER_PARAMETERS)
    except BackendError as exc:
        raise EvaluationError(f"backend: {exc}") from None


def evaluation_create(
    *, version: DatasetVersion, split: str = "test", backend: str, model: str = "",
    base_url: str = "", judge_backend: str = "", judge_model: str = "", user=None,
) -> EvaluationRun:
    """Validate, save the run and send it to a worker after commit."""
    if version.status != DatasetVersion.DONE:
        raise EvaluationError(f"version: v{version.number} is not finished")
    if not (dataset_version_folder(version) / changelog.ROWS_FILE).is_file():
        raise EvaluationError(f"version: v{version.number} has no row index to read splits from")
    if split not in selectors.version_splits(version=version):
        raise EvaluationError(f"split: v{version.number} has no {split!r} rows")
    built = _backend(backend, model, base_url)
    if judge_backend:
        _backend(judge_backend, judge_model)
    total = sum(1 for _ in selectors.split_candidate_ids(version=version, split=split))
    run = EvaluationRun.objects.create(
        project=version.project, version=version, split=split, backend=backend,
        model=model or getattr(built, "model", "") or "", base_url=base_url,
        judge_backend=judge_backend, judge_model=judge_model, total=total, created_by=user,
    )
    from medmax_review.evaluation.tasks import run_evaluation

    run_evaluation.delay_on_commit(run.pk)
    return run


class _Scorer:
    """Asks the model, scores the answer (the judge, when there is one, for open answers)."""

    def __init__(self, run: EvaluationRun):
        self.backend = _backend(run.backend, run.model, run.base_url)
        self.judge = _backend(run.judge_backend, run.judge_model) if run.judge_backend else None
        self.vision = bool(getattr(self.backend, "vision", False))

    def ask(self, item: selectors.EvalItem) -> str:
        image, mime = None, ""
        if self.vision and item.image_file:
            image = image_files.read(item.image_file)
            mime = mimetypes.guess_type(item.image_file)[0] or "image/png"
        request = GenerationRequest(
            messages=[{"role": "system", "content": ANSWER_SYSTEM},
                      {"role": "user", "content": item.instruction}],
            task=item.task, fields={"question": item.instruction}, image=image,
            image_mime=mime, temperature=0.0,
            max_tokens=ANSWER_MAX_TOKENS,
        )
        return self.backend.generate(request).text.strip()

    def score(self, item: selectors.EvalItem, qtype: str, prediction: str) -> tuple[float, str]:
        if qtype == scoring.CLOSED:
            return scoring.score_closed(prediction, item.reference), "yes/no"
        if qtype == scoring.MULTIPLE_CHOICE:
            return scoring.score_choice(prediction, item.reference), "letter"
        if self.judge is not None:
            prompt = scoring.JUDGE_PROMPT.format(
                question=item.instruction, reference=item.reference, prediction=prediction)
            reply = self.judge.generate(GenerationRequest(
                messages=[{"role": "user", "content": prompt}], temperature=0.0, max_tokens=8,
            )).text
            verdict = scoring.judge_verdict(reply)
            if verdict is not None:
                return verdict, "judge"
        return scoring.token_f1(prediction, item.reference), "token F1"


def evaluation_run(*, run_id: int) -> str:
    """Answer and score every item of the run not scored yet, then summarise."""
    stale = settings.GENERATION_STALE_SECONDS
    if lease_claim(model=EvaluationRun, pk=run_id, pending=EvaluationRun.PENDING,
                   running=EvaluationRun.RUNNING, stale_seconds=stale) is None:
        return "busy or finished"
    run = EvaluationRun.objects.select_related("version").get(pk=run_id)
    try:
        scorer = _Scorer(run)
    except EvaluationError as exc:
        return _finish(run, EvaluationRun.FAILED, str(exc))
    skipped = 0
    for item in selectors.split_items(version=run.version, split=run.split,
                                      skip=selectors.items_scored(run=run)):
        if item.credential and run.backend == BACKEND_OPENAI:
            # Credentialed text is never sent to a server outside: counted, not asked.
            skipped += 1
            continue
        qtype = scoring.question_type(task=item.task, instruction=item.instruction,
                                      reference=item.reference)
        try:
            prediction, error = scorer.ask(item), ""
        except BackendUnavailable as exc:
            return _finish(run, EvaluationRun.FAILED, f"stopped: {exc}; run it again to resume")
        except BackendError as exc:
            prediction, error = "", str(exc)
        score, method = scorer.score(item, qtype, prediction) if not error else (0.0, "error")
        _save(run, item, qtype, prediction, score, method, error)
        if not lease_beat(model=EvaluationRun, pk=run.pk, running=EvaluationRun.RUNNING):
            return "taken over"
    summary = selectors.run_summary(run=run)
    summary["skipped_credentialed"] = skipped
    EvaluationRun.objects.filter(pk=run.pk).update(summary=summary)
    return _finish(run, EvaluationRun.DONE)


def _save(run, item, qtype, prediction, score, method, error) -> None:
    try:
        with transaction.atomic():
            EvaluationItem.objects.create(
                run=run, candidate_id=item.candidate_id, task=item.task, source=item.source,
                question_type=qtype, prediction=prediction, score=score, method=method,
                error=error)
            EvaluationRun.objects.filter(pk=run.pk).update(done=F("done") + 1)
    except IntegrityError:
        pass  # another worker stored this item meanwhile: one row each, whoever wrote it


def _finish(run: EvaluationRun, status: str, error: str = "") -> str:
    EvaluationRun.objects.filter(pk=run.pk).update(
        status=status, error=error, finished_at=timezone.now())
    log.info("evaluation %s %s %s", run.pk, status, error)
    return status


def evaluation_resume(*, run: EvaluationRun) -> bool:
    """Send a failed run again: it goes on from the items it has. False if it is not failed."""
    resumed = EvaluationRun.objects.filter(pk=run.pk, status=EvaluationRun.FAILED).update(
        status=EvaluationRun.PENDING, error="", finished_at=None)
    if resumed:
        from medmax_review.evaluation.tasks import run_evaluation

        run_evaluation.delay_on_commit(run.pk)
    return bool(resumed)
