"""In a real browser: an admin launches a local-model job, watches it, cancels, resumes, and
finds scored candidates with their evidence; a real Celery worker does the work."""

import re
import time

import pytest
from django.urls import reverse

from medmax_review.generation.models import GenerationJob
from medmax_review.review.models import Candidate
from tests.generation.conftest import records_demo, require_local_model, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.llm]

# Enough records that the job is still running when Cancel is clicked after the first batch
# (the local backend saves 4 items per batch, and a cancel stops after the item in flight).
LIMIT = 12
PROGRESS = "#job-progress progress"


def _shown_count(page) -> int:
    """done + failed, as the progress bar on the page shows it."""
    return int(page.get_attribute(PROGRESS, "value"))


def _polling(page) -> bool:
    return page.get_attribute("#job-progress", "hx-get") is not None




def test_generation_job_launch_watch_cancel_resume_in_browser(
    project, admin_user, demo_data, worker_factory, open_tab
):
    require_local_model()
    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    worker_factory(LOCAL_MODEL_THREADS="1")
    tab = open_tab()
    page = tab.page
    tab.login(admin_user)

    # given the Generation page, when the admin launches a local SmolLM2 job through the form
    tab.goto(reverse("generation_jobs", args=[project.slug]))
    page.select_option("select[name=task]", "vqa")
    page.select_option("select[name=backend]", "local")
    assert not page.is_visible("input[name=base_url]")  # server fields only for openai
    page.fill("input[name=limit]", str(LIMIT))
    page.fill("input[name=max_tokens]", "48")
    page.fill("input[name=temperature]", "0.2")
    tab.shot("generation-launch-form")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job = GenerationJob.objects.get(project=project)
    assert (job.backend, job.total, job.parameters["max_tokens"]) == ("local", LIMIT, 48)
    assert page.is_visible(f"#flash >> text=Job {job.pk} queued: {LIMIT} item(s).")

    # then the progress bar moves by itself: no reload (the marker set here survives)
    page.evaluate("window.sameDocument = true")
    started = _shown_count(page)
    wait_until(lambda: _shown_count(page) > started, 180, "the progress bar to move")
    assert page.evaluate("window.sameDocument === true")
    assert page.is_visible("[data-status=running]")
    tab.shot("generation-job-running")

    # when the admin cancels while the job is running
    page.click("#job-progress button.bad")
    page.wait_for_selector("[data-status=cancelled]")
    # the page follows the item that was in flight until it is saved, then stops polling
    wait_until(lambda: not _polling(page), 60, "the job page to stop polling")
    shown = _shown_count(page)
    cancelled = GenerationJob.objects.get(pk=job.pk)
    assert cancelled.status == GenerationJob.CANCELLED
    assert shown == cancelled.done + cancelled.failed < LIMIT
    # then the count stops: nothing more is generated while the job stays cancelled
    time.sleep(5)
    still = GenerationJob.objects.get(pk=job.pk)
    assert still.done + still.failed == shown
    assert Candidate.objects.filter(job=job).count() == shown
    assert page.is_visible("#job-progress button >> text=Resume")
    tab.shot("generation-job-cancelled")

    # when the admin resumes, then the job finishes the rest by itself on the same page
    page.click("#job-progress button >> text=Resume")
    page.wait_for_selector("[data-status=done]", timeout=300_000)
    assert not _polling(page)
    tab.shot("generation-job-done")
    finished = GenerationJob.objects.get(pk=job.pk)
    assert finished.done + finished.failed == finished.total == LIMIT
    assert _shown_count(page) == LIMIT
    candidates = Candidate.objects.filter(job=job)
    assert candidates.count() == LIMIT  # nothing generated twice, nothing lost
    assert finished.done >= 1, "no usable candidate at all"

    # every usable candidate is scored by the worker after generation
    usable = candidates.filter(generation_error="")
    assert usable.count() == finished.done
    wait_until(lambda: not usable.filter(scores={}).exists(), 120, "every candidate to be scored")
    with_evidence = [
        c for c in usable.order_by("id") if any(s.get("evidence") for s in c.scores.values())
    ]
    assert with_evidence, "no score recorded any evidence"

    # and the review page shows a candidate's scores with their evidence
    candidate = with_evidence[0]
    name, score = next((n, s) for n, s in candidate.scores.items() if s.get("evidence"))
    tab.goto(reverse("review_candidate", args=[project.slug, candidate.pk]))
    details = page.locator(f"details.score[data-score='{name}']")
    details.locator("summary").click()  # scores open on demand
    evidence = details.locator(".evidence").first
    evidence.wait_for()
    # The panel names the rule in words ("exact duplicate" for exact_duplicate).
    assert evidence.locator(".rule").inner_text() == score["evidence"][0]["rule"].replace("_", " ")
    tab.shot("generation-candidate-evidence")

    # the job list shows the finished job
    tab.goto(reverse("generation_jobs", args=[project.slug]))
    row = page.locator(f"table.jobs tr:has(a[href$='/jobs/{job.pk}/'])")
    assert row.locator(".status-done").is_visible()
    tab.shot("generation-job-list")
    tab.assert_no_csp_violations()
