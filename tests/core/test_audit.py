"""The audit log: security-relevant actions are recorded, staff read it, nobody edits it."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.urls import reverse

from medmax_review.core import medmax
from medmax_review.core.models import AuditEvent
from medmax_review.exports import services as exports
from medmax_review.generation import services as generation
from medmax_review.projects import services as projects
from medmax_review.projects.models import ADJUDICATOR
from tests.conftest import PASSWORD


def _events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_sign_ins_and_failed_sign_ins_are_logged_without_the_password(client, reviewer):
    client.post(reverse("login"), {"username": reviewer.username, "password": "wrong guess"},
                REMOTE_ADDR="203.0.113.9")
    client.post(reverse("login"), {"username": reviewer.username, "password": PASSWORD},
                REMOTE_ADDR="203.0.113.9")

    (failed,) = _events(AuditEvent.SIGN_IN_FAILED)
    assert (failed.target, failed.ip_address, failed.actor) == (reviewer.username, "203.0.113.9", None)
    assert "wrong guess" not in str(failed.details)
    (signed_in,) = _events(AuditEvent.SIGN_IN)
    assert signed_in.actor == reviewer and signed_in.actor_name == reviewer.username


def test_role_changes_and_removals_are_logged(project, admin_user, reviewer):
    projects.membership_set(project=project, user=reviewer, role=ADJUDICATOR, actor=admin_user)
    projects.member_remove(project=project, user_id=reviewer.pk, acting_user=admin_user)

    (changed,) = [e for e in _events(AuditEvent.ROLE_CHANGED) if e.target == reviewer.username
                  and e.actor == admin_user]
    assert changed.details == {"before": "reviewer", "after": "adjudicator"}
    assert changed.project_slug == project.slug
    (removed,) = _events(AuditEvent.MEMBER_REMOVED)
    assert removed.details == {"role": "adjudicator"}


def test_only_staff_change_credentialed_access_and_it_is_logged(project, admin_user, reviewer):
    admin_user.is_staff = False
    with pytest.raises(PermissionDenied):
        projects.credentialed_access_set(user=reviewer, granted=True, actor=admin_user)
    staff = get_user_model().objects.create_user(username="staff", password="x" * 12, is_staff=True)

    assert projects.credentialed_access_set(user=reviewer, granted=True, actor=staff)
    call_command("credentialed_access", reviewer.username, "--revoke")

    reviewer.profile.refresh_from_db()
    assert reviewer.profile.credentialed_access is False
    assert [(e.actor_name, e.details["granted"]) for e in _events(AuditEvent.CREDENTIAL_CHANGED)] == [
        ("staff", True), ("", False)]


def test_exports_downloads_bulk_actions_and_template_edits_are_logged(
    client, project, admin_user, demo_data
):
    from medmax_review.sources.services import records_import

    records_import(project=project, path=demo_data / "skimage.jsonl", approved=True)
    job = generation.job_create(project=project, task=medmax.IMAGE_CAPTIONING, backend="template")
    generation.job_run(job_id=job.pk)
    generation.template_save(project=project, task=medmax.VQA, name="mine",
                             text="Q: {question}\nA: {answer}", user=admin_user)
    version = exports.dataset_version_create(project=project, user=admin_user, options={})
    exports.dataset_version_build(version_id=version.pk)
    client.force_login(admin_user)
    client.get(reverse("export_download", args=[project.slug, version.number]) + "?file=manifest.json")

    assert [e.target for e in _events(AuditEvent.TEMPLATE_SAVED)] == ["vqa/mine@v1"]
    assert [(e.actor, e.target) for e in _events(AuditEvent.EXPORT_CREATED)] == [(admin_user, "v1")]
    (download,) = _events(AuditEvent.EXPORT_DOWNLOADED)
    assert download.details == {"file": "manifest.json"} and download.actor == admin_user


def test_staff_read_the_log_in_the_admin_and_cannot_change_it(client, admin_user):
    staff = get_user_model().objects.create_user(username="staff", password="x" * 12,
                                                 is_staff=True, is_superuser=True)
    event = AuditEvent.objects.create(action=AuditEvent.SIGN_IN, actor_name="someone")
    client.force_login(staff)

    listing = client.get(reverse("admin:core_auditevent_changelist"))
    assert listing.status_code == 200 and "someone" in listing.content.decode()
    assert client.get(reverse("admin:core_auditevent_add")).status_code == 403
    client.post(reverse("admin:core_auditevent_delete", args=[event.pk]), {"post": "yes"})
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    client.force_login(admin_user)  # a project admin, not staff
    assert client.get(reverse("admin:core_auditevent_changelist")).status_code == 302
