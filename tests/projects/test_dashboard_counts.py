"""The project dashboard's counts are cached for half a minute, then counted again."""

from medmax_review.projects import selectors
from medmax_review.sources.models import SourceRecord


def _record(project, n):
    return SourceRecord.objects.create(project=project, source="vqa_rad", external_id=f"r{n}",
                                       license="CC0-1.0", question="q", answer="a")


def test_counts_are_reused_within_the_window_and_refreshed_after(project, admin_user, clock,
                                                                 django_assert_num_queries):
    _record(project, 1)
    assert selectors.project_summary(project=project, user=admin_user)["records"] == 1
    _record(project, 2)
    with django_assert_num_queries(0):
        assert selectors.project_summary(project=project, user=admin_user)["records"] == 1
    clock.now += selectors.SUMMARY_SECONDS + 1
    assert selectors.project_summary(project=project, user=admin_user)["records"] == 2


def test_dashboard_says_when_it_counted(client, project, admin_user, clock):
    client.force_login(admin_user)
    html = client.get(f"/p/{project.slug}/").content.decode()
    assert "refreshed every half minute" in html and "0 source records" in html
