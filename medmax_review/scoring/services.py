"""Pre-scoring: run the scorers over candidates, store scores and queue priority, auto-reject."""

import functools
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from medmax_review.core.bulk_update import rows_update
from medmax_review.core.checks import reject_reason_for
from medmax_review.core.medmax import IMAGE_NONE
from medmax_review.review.models import GENERATION_ERROR, PENDING, Candidate, Decision
from medmax_review.review.queue import candidates_system_reject, slots_order_sync
from medmax_review.scoring.confidence import risks_assign
from medmax_review.scoring.fingerprints import (
    earlier_near_duplicates,
    image_fingerprints_ensure,
    near_images,
    text_sha1,
)
from medmax_review.scoring.scorers import grounding, near_duplicate
from medmax_review.scoring.scorers import image as image_scorer
from medmax_review.scoring.scorers.base import NA, ScoreInput, ScoreResult
from medmax_review.scoring.scorers.consistency import score_consistency
from medmax_review.scoring.scorers.format import score_format
from medmax_review.scoring.scorers.grounding import score_grounding
from medmax_review.scoring.scorers.llm_judge import NAME as LLM_JUDGE
from medmax_review.scoring.scorers.llm_judge import score_llm_judge
from medmax_review.scoring.scorers.phi import score_phi
from medmax_review.sources.models import SourceRecord

logger = logging.getLogger(__name__)

BATCH_SIZE = 500

# Scorers that need nothing but the candidate's and its record's text.
TEXT_SCORERS: list[Callable[[ScoreInput], ScoreResult]] = [
    score_grounding, score_consistency, score_phi, score_format,
]

def score_input_for(candidate: Candidate) -> ScoreInput:
    record = candidate.record
    return ScoreInput(
        instruction=candidate.instruction,
        context=candidate.context,
        response=candidate.response,
        task=candidate.task,
        image_position=candidate.image_position,
        caption=record.caption,
        inline_mention=record.inline_mention,
        question=record.question,
        answer=record.answer,
        report=record.report,
        modality=record.modality or (record.image.modality if record.image_id else ""),
        has_image=candidate.image_position != IMAGE_NONE and record.image_id is not None,
    )


def priority_for(scores: dict) -> float:
    """Review-queue priority, higher = sooner.

    priority = 0.7 * (1 - worst score) + 0.3 * mean uncertainty, where a score's uncertainty is
    1 - |2v - 1| (1 at v = 0.5, 0 at v = 0 or 1). A candidate with any failed check comes
    first; among clean ones, those with middling (uncertain) scores come before the sure ones.
    """
    # A check that had nothing to look at (band n/a) says nothing about the candidate.
    values = [s["value"] for s in scores.values() if s.get("band") != NA]
    if not values:
        return 0.0
    worst = min(values)
    uncertainty = sum(1 - abs(2 * v - 1) for v in values) / len(values)
    return round(0.7 * (1 - worst) + 0.3 * uncertainty, 4)


def candidate_scores_compute(*, item: ScoreInput) -> dict:
    return {result.name: result.as_dict() for result in (scorer(item) for scorer in TEXT_SCORERS)}


def candidates_score(*, candidate_ids: list[int], llm_judge: bool = False) -> int:
    """Score these candidates; returns how many were scored. Running it twice changes nothing.

    The LLM judge runs when `llm_judge` is set or the project puts a threshold on it, and only
    if a backend is configured (OPENAI_BASE_URL and OPENAI_MODEL).
    """
    ids = sorted(set(candidate_ids))
    # Built on first use only: most scoring runs never ask the judge.
    judge = functools.cache(_judge_client)
    scored = 0
    for start in range(0, len(ids), BATCH_SIZE):
        batch = list(
            Candidate.objects.filter(id__in=ids[start : start + BATCH_SIZE])
            .select_related("record", "record__image", "project")
            .order_by("id")
        )
        _score_batch(batch, judge=judge, llm_judge=llm_judge)
        scored += len(batch)
    return scored


def _judge_client():
    if not (settings.OPENAI_BASE_URL and settings.OPENAI_MODEL):
        return None
    from openai import OpenAI  # imported only when a judge backend is configured

    return OpenAI(
        base_url=settings.OPENAI_BASE_URL, api_key=settings.OPENAI_API_KEY or "unused",
        timeout=settings.LLM_TIMEOUT_SECONDS, max_retries=settings.LLM_MAX_RETRIES,
    )


def _judge_score(
    candidate: Candidate, item: ScoreInput, *, judge: Callable[[], object | None], wanted: bool
) -> dict | None:
    """The judge's score; a verdict already given for the same text is kept, not asked again.

    `judge` returns the client (None when no backend is configured).
    """
    sha1 = text_sha1(candidate)
    previous = candidate.scores.get(LLM_JUDGE)
    if previous and previous.get("text_sha1") != sha1:
        previous = None  # a verdict on text that has since been edited says nothing
    thresholds = candidate.project.auto_reject_thresholds or {}
    if previous or not (wanted or LLM_JUDGE in thresholds):
        return previous
    client = judge()
    if client is None:
        return None
    try:
        score = score_llm_judge(item, client=client, model=settings.OPENAI_MODEL).as_dict()
    except Exception as exc:  # the backend is optional: its outage must not stop the other scores
        logger.warning("LLM judge failed for candidate %s: %s", candidate.id, exc)
        return None
    score["text_sha1"] = sha1
    return score


def _score_batch(
    batch: list[Candidate], *, judge: Callable[[], object | None], llm_judge: bool = False
) -> None:
    image_scores = _image_scores(batch)
    duplicate_scores = _near_duplicate_scores(batch)
    changed = []
    items = [score_input_for(candidate) for candidate in batch]
    grounding.embeddings_prepare(items)  # one model call for the batch, not one per candidate
    for candidate, item in zip(batch, items, strict=True):
        scores = candidate_scores_compute(item=item)
        if candidate.id in image_scores:
            scores[image_scorer.NAME] = image_scores[candidate.id]
        scores[near_duplicate.NAME] = duplicate_scores[candidate.id]
        judged = _judge_score(candidate, item, judge=judge, wanted=llm_judge)
        if judged is not None:
            scores[LLM_JUDGE] = judged
        priority = priority_for(scores)
        if scores != candidate.scores or priority != candidate.priority:
            candidate.scores, candidate.priority = scores, priority
            changed.append(candidate)
    # The project's learned reject risk follows the new scores (and a refitted model).
    changed = list({c.pk: c for c in changed + risks_assign(batch)}.values())
    with transaction.atomic():
        if changed:
            rows_update(objs=changed,
                        fields=["scores", "priority", "reject_risk", "reject_risk_detail"])
        slots_order_sync(candidates=batch)
        _auto_reject(batch)


# --- images -------------------------------------------------------------------------------

def _image_scores(batch: list[Candidate]) -> dict[int, dict]:
    with_image = [c for c in batch if c.record.image_id]
    if not with_image:
        return {}
    fingerprints = image_fingerprints_ensure(assets=[c.record.image for c in with_image])
    near = near_images(list(fingerprints.values()))
    project_ids = {c.project_id for c in with_image}
    image_ids = set(fingerprints) | {o for pairs in near.values() for o, _ in pairs}
    records_of = defaultdict(list)  # (project, image) -> [(record id, label)]
    for record_id, project_id, image_id, source, external_id in SourceRecord.objects.filter(
        project_id__in=project_ids, image_id__in=image_ids
    ).values_list("id", "project_id", "image_id", "source", "external_id").order_by("id"):
        records_of[(project_id, image_id)].append((record_id, f"{source}:{external_id}"))
    scores = {}
    for c in with_image:
        image_id = c.record.image_id
        same = [label for rid, label in records_of[(c.project_id, image_id)] if rid != c.record_id]
        near_labels = [
            (label, distance)
            for other_id, distance in near.get(image_id, [])
            for _, label in records_of[(c.project_id, other_id)][:1]
        ]
        f = fingerprints[image_id]
        facts = image_scorer.ImageFacts(
            decodable=f.decodable, error=f.error, width=f.width, height=f.height,
            stddev=f.stddev, dhash=f.dhash_unsigned,
        )
        scores[c.id] = image_scorer.score_image(
            facts, same_image_records=same, near_duplicates=near_labels
        ).as_dict()
    return scores


# --- near-duplicate candidates ------------------------------------------------------------

def _near_duplicate_scores(batch: list[Candidate]) -> dict[int, dict]:
    """Each candidate is compared with EARLIER candidates of its project only, so the later copy
    is the one flagged and the result does not depend on the order of scoring."""
    matches = earlier_near_duplicates(candidates=batch)
    return {c.id: near_duplicate.score_near_duplicate(matches[c.id]).as_dict() for c in batch}


def _threshold_breach(candidate: Candidate) -> tuple[str, float, float] | None:
    """(score name, value, threshold) of the first score under the project's threshold."""
    for name, threshold in sorted((candidate.project.auto_reject_thresholds or {}).items()):
        score = candidate.scores.get(name)
        # A malformed threshold (not a number) is ignored rather than rejecting on a guess.
        if score is None or isinstance(threshold, bool) or not isinstance(threshold, int | float):
            continue
        if score.get("band") == NA:  # nothing was checked: no ground to reject on
            continue
        if score["value"] < threshold:
            return name, score["value"], float(threshold)
    return None


def _auto_reject(batch: list[Candidate]) -> None:
    breaches = {c.id: b for c in batch if c.status == PENDING and (b := _threshold_breach(c))}
    if not breaches:
        return
    decided = set(
        Decision.objects.filter(candidate_id__in=breaches).values_list("candidate_id", flat=True)
    )
    for candidate_id, (name, value, threshold) in breaches.items():
        if candidate_id in decided:
            continue  # a human (or an earlier auto-reject) already decided: never overrule it
        # Only a candidate still pending is rejected; the conditional update makes a concurrent
        # run (or a reviewer's decision landing meanwhile) lose cleanly instead of doubling up.
        locked = Candidate.objects.select_for_update().filter(id=candidate_id, status=PENDING).first()
        if locked is None or locked.decisions.exists():
            continue
        # The review queue's own system rejection: it closes claimed slots too, so a reviewer
        # holding this candidate is not handed it back read-only.
        candidates_system_reject(
            candidates=[locked],
            reason=reject_reason_for(name, locked.scores.get(name) or {}),
            note=f"auto-rejected: {name} score {value:.2f} is below the project's "
                 f"threshold {threshold:.2f}",
        )


RESEND_AFTER_SECONDS = 120  # longer than a scoring message normally waits in the queue
RESEND_BATCH = 500


def candidates_unscored(*, older_than_seconds: int = RESEND_AFTER_SECONDS):
    """Generated candidates still without scores a while after they were saved: their scoring
    message was lost (the broker was down as the batch committed, or a worker died)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return Candidate.objects.filter(job__isnull=False, scores={}, created_at__lt=cutoff) \
        .exclude(status=GENERATION_ERROR)


def unscored_resend(*, older_than_seconds: int = RESEND_AFTER_SECONDS) -> int:
    """Send the lost scoring again (idempotent: scoring twice changes nothing)."""
    from medmax_review.scoring.tasks import score_candidates

    ids = list(candidates_unscored(older_than_seconds=older_than_seconds)
               .order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), RESEND_BATCH):
        score_candidates.delay(ids[start : start + RESEND_BATCH])
    return len(ids)
