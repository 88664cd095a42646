"""Stored project figures: computed once, served from one row, refreshed in the background by
the one request that claims the refresh, and filled in by polling while first computed."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from medmax_review.projects import figures
from medmax_review.projects.models import ProjectFigures
from medmax_review.projects.tasks import figures_refresh
from medmax_review.sources.models import SourceRecord


def _record(project, n):
    return SourceRecord.objects.create(project=project, source="vqa_rad", external_id=f"r{n}",
                                       license="CC0-1.0", question="q", answer="a")


def _age(project, name, seconds):
    ProjectFigures.objects.filter(project=project, name=name).update(
        computed_at=timezone.now() - timedelta(seconds=seconds))


def _dashboard(client, project):
    return client.get(f"/p/{project.slug}/").content.decode()


def test_counts_are_stored_and_served_until_stale(client, project, admin_user,
                                                 django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    _record(project, 1)
    assert "1 source records" in _dashboard(client, project)
    _record(project, 2)
    with CaptureQueriesContext(connection) as queries:
        html = _dashboard(client, project)
    assert "1 source records" in html  # the stored figures, not a recount
    assert not any("sources_sourcerecord" in q["sql"] for q in queries.captured_queries)
    assert 'data-testid="computed-at"' in html and "counted again when older than 30 seconds" in html

    _age(project, "counts", figures.KINDS["counts"].max_age_seconds + 1)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert "1 source records" in _dashboard(client, project)  # stale ones, while refreshed
        _dashboard(client, project)
    assert len(sent) == 1  # only the request that claimed the refresh sends it
    figures_refresh(project.id, "counts")  # what the worker runs
    assert "2 source records" in _dashboard(client, project)


def test_a_refresh_is_claimed_again_when_its_message_was_lost(project,
                                                              django_capture_on_commit_callbacks):
    figures.figures_read(project=project, name="counts")
    _age(project, "counts", 3600)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        figures.figures_read(project=project, name="counts")
        figures.figures_read(project=project, name="counts")
    assert len(sent) == 1
    ProjectFigures.objects.filter(project=project, name="counts").update(
        refresh_claimed_at=timezone.now() - timedelta(seconds=figures.CLAIM_SECONDS + 1))
    with django_capture_on_commit_callbacks(execute=False) as sent:
        figures.figures_read(project=project, name="counts")
    assert len(sent) == 1


def test_figures_that_take_long_to_compute_are_refreshed_less_often(
        project, django_capture_on_commit_callbacks):
    figures.figures_read(project=project, name="counts")
    ProjectFigures.objects.filter(project=project).update(compute_seconds=10)
    _age(project, "counts", 150)  # past the kind's 30 s, within 20 x 10 s
    with django_capture_on_commit_callbacks(execute=False) as sent:
        shown = figures.figures_read(project=project, name="counts")
    assert sent == [] and shown.max_age_seconds == 10 * figures.COST_FACTOR
    _age(project, "counts", 10 * figures.COST_FACTOR + 1)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        figures.figures_read(project=project, name="counts")
    assert len(sent) == 1
    stored = figures.figures_refresh(project=project, name="counts")
    assert 0 < stored.compute_seconds < 10  # measured again by the refresh


def test_intervals_read_as_words():
    from medmax_review.core.templatetags.medmax_tags import interval

    assert [interval(s) for s in (30, 60, 89, 90, 240, 3600)] == [
        "30 seconds", "60 seconds", "89 seconds", "2 minutes", "4 minutes", "60 minutes"]


def test_running_a_refresh_twice_stores_the_same_figures(project):
    _record(project, 1)
    once = figures.figures_refresh(project=project, name="counts").data
    twice = figures.figures_refresh(project=project, name="counts").data
    assert once == twice == {"records": 1, "candidates": 0, "by_status": {}}
    assert ProjectFigures.objects.filter(project=project).count() == 1


def test_pages_poll_while_another_request_computes_them_first(client, project, admin_user):
    ProjectFigures.objects.create(project=project, name="counts", refresh_claimed_at=timezone.now())
    ProjectFigures.objects.create(project=project, name="stats", refresh_claimed_at=timezone.now())
    client.force_login(admin_user)
    for url in (f"/p/{project.slug}/", f"/p/{project.slug}/candidates/stats/"):
        html = client.get(url).content.decode()
        assert 'data-testid="figures-pending"' in html and 'hx-trigger="every 2s"' in html
        assert 'hx-select="#figures"' in html and 'data-testid="computed-at"' not in html


def test_a_failed_first_computation_releases_its_claim(project, monkeypatch):
    def broken(project):
        raise RuntimeError("database went away")

    monkeypatch.setitem(figures.KINDS, "counts", figures.Kind(broken, 30))
    with pytest.raises(RuntimeError):
        figures.figures_read(project=project, name="counts")
    row = ProjectFigures.objects.get(project=project, name="counts")
    assert row.refresh_claimed_at is None and row.data is None


def test_a_real_worker_refreshes_stale_figures(project, worker):
    _record(project, 1)
    figures.figures_read(project=project, name="counts")
    _record(project, 2)
    _age(project, "counts", 3600)
    assert figures.figures_read(project=project, name="counts").data["records"] == 1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = ProjectFigures.objects.get(project=project, name="counts")
        if row.data["records"] == 2:
            break
        time.sleep(0.2)
    assert row.data["records"] == 2 and row.refresh_claimed_at is None


def test_a_pending_page_fills_itself_in_when_the_figures_are_stored(open_tab, project, admin_user):
    """In a browser under the CSP: the placeholder polls, and shows the counts once stored."""
    _record(project, 1)
    ProjectFigures.objects.create(project=project, name="counts", refresh_claimed_at=timezone.now())
    tab = open_tab()
    tab.login(admin_user)
    tab.goto(f"/p/{project.slug}/")
    tab.page.wait_for_selector('[data-testid="figures-pending"]')
    figures.figures_refresh(project=project, name="counts")  # what the worker does
    tab.page.wait_for_selector('[data-testid="computed-at"]', timeout=10_000)
    assert "1 source records" in tab.page.inner_text("main")
    assert tab.page.locator('[data-testid="figures-pending"]').count() == 0
    tab.assert_no_csp_violations()
