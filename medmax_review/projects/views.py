from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from medmax_review.core.access import project_for
from medmax_review.projects import selectors
from medmax_review.projects.models import REVIEWER


@login_required
def home(request):
    memberships = selectors.memberships_for_user(user=request.user)
    return render(request, "projects/home.html", {"memberships": memberships})


@login_required
def project_dashboard(request, slug):
    project, membership = project_for(request.user, slug, REVIEWER)
    summary = selectors.project_summary(project=project, user=request.user)
    return render(
        request,
        "projects/project_dashboard.html",
        {"project": project, "membership": membership, "summary": summary},
    )
