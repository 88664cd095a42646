from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from medmax_review.projects import selectors, services
from medmax_review.projects.access import project_for
from medmax_review.projects.figures import figures_read
from medmax_review.projects.forms import MemberAddForm, MemberRoleForm, ProjectSettingsForm
from medmax_review.projects.models import ADMIN, REVIEWER, Membership


@login_required
def home(request):
    memberships = selectors.memberships_for_user(user=request.user)
    return render(request, "projects/home.html", {"memberships": memberships})


@login_required
def project_dashboard(request, slug):
    project, membership = project_for(request.user, slug, REVIEWER)
    return render(
        request,
        "projects/project_dashboard.html",
        {"project": project, "membership": membership,
         "figures": figures_read(project=project, name="counts")},
    )


@login_required
def project_settings(request, slug):
    project, membership = project_for(request.user, slug, ADMIN)
    form = ProjectSettingsForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Project settings saved.")
        if "reviews_required" in form.changed_data:
            # The candidates already waiting keep their slots unless the admin says otherwise.
            return redirect("reviews_required_confirm", slug)
        return redirect("project_settings", slug)
    return render(
        request, "projects/project_settings.html",
        {"project": project, "membership": membership, "form": form},
    )


@login_required
def project_members(request, slug):
    project, membership = project_for(request.user, slug, ADMIN)
    form = MemberAddForm(request.POST or None)
    new_account = None
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        outcome, _, password = services.member_add(
            project=project, username=username, role=form.cleaned_data["role"],
            actor=request.user,
        )
        if outcome == services.UNAVAILABLE:
            form.add_error("username", f"{username!r} is not available: choose another name, "
                                       "or ask staff to add that account.")
        elif outcome == services.CREATED:
            # Shown on this page only: never stored in a message (a cookie) or the session.
            new_account = {"username": username, "password": password}
            form = MemberAddForm()
        else:
            messages.success(request, f"{username} added.")
            return redirect("project_members", slug)
    members = selectors.members_for_project(project=project)
    return render(
        request, "projects/project_members.html",
        {"project": project, "membership": membership, "form": form, "members": members,
         "new_account": new_account},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def project_member_role(request, slug, user_id):
    project, _ = project_for(request.user, slug, ADMIN)
    target = get_object_or_404(Membership, project=project, user_id=user_id)
    form = MemberRoleForm(request.POST)
    if target.user_id == request.user.pk:
        messages.error(request, "You cannot change your own role.")
    elif not form.is_valid():
        messages.error(request, f"Not a role: {request.POST.get('role', '')!r}.")
    else:
        services.membership_set(project=project, user=target.user, role=form.cleaned_data["role"],
                                actor=request.user)
        messages.success(request, f"{target.user.username} is now {form.cleaned_data['role']}.")
    return redirect("project_members", slug)


@login_required
@require_POST
def project_member_remove(request, slug, user_id):
    project, _ = project_for(request.user, slug, ADMIN)
    get_object_or_404(Membership, project=project, user_id=user_id)
    if services.member_remove(project=project, user_id=user_id, acting_user=request.user):
        messages.success(request, "Member removed.")
    else:
        messages.error(request, "You cannot remove yourself.")
    return redirect("project_members", slug)
