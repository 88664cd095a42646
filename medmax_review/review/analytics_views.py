"""The rejection analytics page and its CSV (thin views over review.analytics)."""

import csv
import functools

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse

from medmax_review.projects.access import project_for
from medmax_review.projects.models import ADJUDICATOR
from medmax_review.review import analytics, browse_selectors
from medmax_review.review.browse_selectors import BrowseError


class _Echo:
    """A file-like object csv.writer writes to, handing each line back to the stream."""

    def write(self, value):
        return value


def _bad_score_is_400(view):
    """A score name that is not one (typed into the query string) is a bad request."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except BrowseError as exc:
            return HttpResponseBadRequest(str(exc))

    return wrapped


def _analytics(request, project):
    score = request.GET.get("score", "")
    return score, analytics.rejection_analytics(project=project, user=request.user,
                                                score_name=score)


@login_required
@_bad_score_is_400
def rejection_analytics(request, slug):
    project, membership = project_for(request.user, slug, ADJUDICATOR)
    score, breakdowns = _analytics(request, project)
    browse_url = reverse("candidate_browse", args=[slug])
    return render(request, "review/analytics.html", {
        "project": project, "membership": membership, "score": score,
        "score_names": browse_selectors.score_names_recent(project=project),
        "pages": [analytics.breakdown_page(breakdown=b, browse_url=browse_url)
                  for b in breakdowns],
    })


@login_required
@_bad_score_is_400
def rejection_analytics_csv(request, slug):
    project, _ = project_for(request.user, slug, ADJUDICATOR)
    _, breakdowns = _analytics(request, project)
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in analytics.analytics_csv_rows(breakdowns)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-rejections.csv"'
    return response
