"""candidates_score end to end on the database: scores, priority on slots, idempotency,
auto-reject, near-duplicate images and candidates."""

import io

import pytest
from PIL import Image

from medmax_review.review.models import (
    APPROVE,
    PENDING,
    REJECT,
    REJECTED,
    Candidate,
    Decision,
    ReviewSlot,
)
from medmax_review.scoring.models import CandidateBand, ImageFingerprint
from medmax_review.scoring.services import candidates_score, priority_for

pytestmark = pytest.mark.django_db


def _refresh(*candidates):
    return [Candidate.objects.get(pk=c.pk) for c in candidates]


def test_candidates_score_writes_scores_priority_and_slots(demo_rows, make_record, make_candidate):
    record = make_record(demo_rows["vqarad-1582"])
    good = make_candidate(record, response="The right lung has diffuse opacification.")
    bad = make_candidate(record, response="The left lung, Mr. John Smith.", sample_index=1)

    assert candidates_score(candidate_ids=[good.id, bad.id]) == 2

    good, bad = _refresh(good, bad)
    assert set(good.scores) == {
        "grounding", "consistency", "phi", "format", "image", "near_duplicate"
    }
    assert good.scores["consistency"]["band"] == "good"
    assert bad.scores["consistency"]["band"] == "fail"
    assert bad.scores["phi"]["evidence"][0]["suggestion"] == "[NAME]"
    assert bad.priority > good.priority
    assert bad.priority == priority_for(bad.scores)
    for candidate in (good, bad):
        slot_priorities = set(candidate.slots.values_list("priority", flat=True))
        assert slot_priorities == {candidate.priority}
    queue = list(ReviewSlot.objects.filter(state="open").order_by("-priority", "id"))
    assert queue[0].candidate_id == bad.id


def test_candidates_score_twice_changes_nothing(demo_rows, make_record, make_candidate):
    record = make_record(demo_rows["slake-4114"])
    candidate = make_candidate(record, response="Yes, this is an MRI.")
    candidates_score(candidate_ids=[candidate.id])
    (first,) = _refresh(candidate)

    candidates_score(candidate_ids=[candidate.id])

    (second,) = _refresh(candidate)
    assert second.scores == first.scores and second.priority == first.priority
    assert second.updated_at == first.updated_at  # no write at all the second time
    assert ImageFingerprint.objects.count() == 1
    assert CandidateBand.objects.filter(signature__candidate=candidate).count() == 16


def test_candidates_score_auto_rejects_once(project, demo_rows, make_record, make_candidate):
    project.auto_reject_thresholds = {"format": 0.2, "phi": 0.5}
    project.save()
    record = make_record(demo_rows["vqarad-1582"])
    refusal = make_candidate(record, response="I'm sorry, as an AI I cannot answer.")
    fine = make_candidate(record, response="Right", sample_index=1)

    candidates_score(candidate_ids=[refusal.id, fine.id])
    candidates_score(candidate_ids=[refusal.id, fine.id])

    refusal, fine = _refresh(refusal, fine)
    assert refusal.status == REJECTED and fine.status == PENDING
    (decision,) = Decision.objects.filter(candidate=refusal)
    assert decision.reviewer is None and decision.action == REJECT
    assert decision.reason == "formatting"
    assert "format score 0.00" in decision.system_note and "threshold 0.20" in decision.system_note
    assert not refusal.slots.filter(state=ReviewSlot.OPEN).exists()
    assert fine.slots.filter(state=ReviewSlot.OPEN).count() == 1
    assert not Decision.objects.filter(candidate=fine).exists()


def test_candidates_score_never_overrules_a_human(project, demo_rows, make_record, make_candidate,
                                                  reviewer):
    project.auto_reject_thresholds = {"phi": 0.5}
    project.save()
    record = make_record(demo_rows["vqarad-1582"])
    candidate = make_candidate(record, response="Right, per Dr. Brown.")
    Decision.objects.create(candidate=candidate, reviewer=reviewer, action=APPROVE,
                            candidate_version=candidate.version)

    candidates_score(candidate_ids=[candidate.id])

    (candidate,) = _refresh(candidate)
    assert candidate.status == PENDING
    assert candidate.scores["phi"]["band"] == "fail"
    assert Decision.objects.filter(candidate=candidate).count() == 1


def test_candidates_score_finds_near_duplicate_image(project, demo_rows, demo_data, make_record,
                                                     make_candidate):
    row = demo_rows["vqarad-1582"]
    with Image.open(demo_data / row["image"]) as im:
        copy = im.convert("RGB").resize((int(im.width * 0.9), int(im.height * 0.9)))
    buf = io.BytesIO()
    copy.save(buf, "JPEG", quality=75)
    original = make_record(row)
    altered = make_record(row, image_bytes=buf.getvalue(), external_id="vqarad-1582-copy")
    other = make_record(demo_rows["slake-4114"])
    assert original.image_id != altered.image_id
    a = make_candidate(original, response="Right")
    b = make_candidate(altered, response="Right")
    c = make_candidate(other, response="Yes")

    candidates_score(candidate_ids=[a.id, b.id, c.id])

    a, b, c = _refresh(a, b, c)
    (ev,) = [e for e in b.scores["image"]["evidence"] if e["rule"] == "near_duplicate"]
    assert "vqarad:vqarad-1582 (distance" in ev["text"]
    assert any(e["rule"] == "near_duplicate" for e in a.scores["image"]["evidence"])
    assert c.scores["image"]["band"] == "good"


def test_candidates_score_exact_duplicate_image_names_other_record(demo_rows, make_record,
                                                                   make_candidate):
    first = make_record(demo_rows["vqarad-2156"])
    second = make_record(demo_rows["vqarad-2157"])  # same image file, another question
    assert first.image_id == second.image_id
    candidate = make_candidate(second, response="Yes")

    candidates_score(candidate_ids=[candidate.id])

    (candidate,) = _refresh(candidate)
    (ev,) = candidate.scores["image"]["evidence"]
    assert ev["rule"] == "exact_duplicate" and "vqarad:vqarad-2156" in ev["text"]


def test_candidates_score_flags_later_near_duplicate_candidate(demo_rows, make_record,
                                                               make_candidate):
    caption = demo_rows["skimage-retina"]["caption"]
    record = make_record(demo_rows["skimage-retina"])
    kwargs = {"task": "image_captioning", "instruction": "Describe the image."}
    first = make_candidate(record, response=caption, **kwargs)
    second = make_candidate(record, response=caption.replace("useful", "handy"), sample_index=1,
                            **kwargs)
    unrelated = make_candidate(record, response="A fundus photograph of a left eye.",
                               sample_index=2, **kwargs)

    # Scored in two calls, later candidate first: the result must not depend on the order.
    candidates_score(candidate_ids=[second.id])
    candidates_score(candidate_ids=[first.id, unrelated.id])
    candidates_score(candidate_ids=[second.id])

    first, second, unrelated = _refresh(first, second, unrelated)
    assert first.scores["near_duplicate"]["value"] == 1.0
    assert unrelated.scores["near_duplicate"]["value"] == 1.0
    (ev,) = second.scores["near_duplicate"]["evidence"]
    assert f"candidate {first.id}" in ev["text"]
    assert second.scores["near_duplicate"]["band"] in ("poor", "fail")


def test_candidates_score_rescores_edited_text(demo_rows, make_record, make_candidate):
    record = make_record(demo_rows["vqarad-1582"])
    candidate = make_candidate(record, response="Right")
    candidates_score(candidate_ids=[candidate.id])
    Candidate.objects.filter(pk=candidate.pk).update(response="Left")

    candidates_score(candidate_ids=[candidate.id])

    (candidate,) = _refresh(candidate)
    assert candidate.scores["consistency"]["band"] == "fail"
    assert set(candidate.slots.values_list("priority", flat=True)) == {candidate.priority}


def test_candidates_score_same_question_on_other_images_is_not_duplicate(demo_rows, make_record,
                                                                          make_candidate):
    # SLAKE asks "Which part of the body does this image belong to?" of many scans; each
    # answer is its own data point.
    question = "Which part of the body does this image belong to?"
    rows = [r for r in demo_rows.values() if r.get("question") == question and r["answer"] == "Chest"]
    images = {r["image"] for r in rows}
    assert len(images) >= 2
    first, second = (make_record(r) for r in [next(r for r in rows if r["image"] == i)
                                              for i in sorted(images)[:2]])
    a = make_candidate(first, response="Chest")
    b = make_candidate(second, response="Chest")

    candidates_score(candidate_ids=[a.id, b.id])

    assert Candidate.objects.get(pk=b.pk).scores["near_duplicate"]["value"] == 1.0


def test_candidates_score_auto_reject_names_laterality(project, demo_rows, make_record,
                                                       make_candidate):
    project.auto_reject_thresholds = {"consistency": 0.5, "grounding": "high"}
    project.save()
    record = make_record(demo_rows["vqarad-1582"])
    swapped = make_candidate(record, response="Left")
    unknown = make_candidate(record, response="Right lung, zebra", sample_index=1)

    candidates_score(candidate_ids=[swapped.id, unknown.id])

    (decision,) = Decision.objects.filter(candidate=swapped)
    assert decision.reason == "laterality"
    # "high" is not a number: that threshold is ignored, nothing is rejected on it.
    assert Candidate.objects.get(pk=unknown.pk).status == PENDING


def test_candidates_score_repairs_lagging_slot_priority(demo_rows, make_record, make_candidate):
    record = make_record(demo_rows["vqarad-1582"])
    candidate = make_candidate(record, response="Left")
    candidates_score(candidate_ids=[candidate.id])
    # A slot reopened with a stale priority (e.g. re-queued before scores were known).
    ReviewSlot.objects.filter(candidate=candidate).update(priority=0.0)

    candidates_score(candidate_ids=[candidate.id])

    (candidate,) = _refresh(candidate)
    assert candidate.priority > 0
    assert set(candidate.slots.values_list("priority", flat=True)) == {candidate.priority}
