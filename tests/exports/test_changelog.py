"""The changelog of a dataset version, from known edits between two versions: in the manifest,
in CHANGELOG.md, from export_diff, and on the export page."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from medmax_review.core import medmax
from medmax_review.exports import changelog, services
from medmax_review.exports.build import dataset_version_folder
from medmax_review.review.models import REJECT, REJECTED, Candidate, Decision
from tests.exports.conftest import approve_records


def _build(project):
    version = services.dataset_version_create(project=project, options={})
    version = services.dataset_version_build(version_id=version.pk)
    assert version.status == "done", version.error
    return version


def _edit_between_versions(project, records, admin_user):
    """Between v1 and v2: one candidate rejected, one edited, one deleted, one added."""
    rejected, edited, deleted = Candidate.objects.filter(project=project).order_by("id")[:3]
    Decision.objects.create(candidate=rejected, reviewer=admin_user, action=REJECT,
                            reason="hallucination", candidate_version=rejected.version)
    Candidate.objects.filter(pk=rejected.pk).update(status=REJECTED)
    Candidate.objects.filter(pk=edited.pk).update(response="Edited answer.", edited=True)
    deleted_id = deleted.pk
    deleted.delete()
    (added,) = approve_records(project, [records[10]], task=medmax.IMAGE_CAPTIONING)
    return {"rejected": rejected, "edited": edited, "deleted_id": deleted_id, "added": added}


def test_changelog_from_known_edits(project, vqa_rad, admin_user):
    first = _build(project)
    assert first.manifest["changelog"]["previous_version"] is None
    assert first.manifest["changelog"]["added"] == 150
    changed = _edit_between_versions(project, vqa_rad, admin_user)
    second = _build(project)
    log = second.manifest["changelog"]
    assert log["previous_version"] == 1
    assert (log["added"], log["removed"], log["edited"], log["unchanged"]) == (1, 2, 1, 147)
    assert log["by_task"] == {"image_captioning": {"added": 1},
                              "vqa": {"edited": 1, "removed": 2}}
    assert log["by_source"] == {"vqa_rad": {"added": 1, "edited": 1, "removed": 2}}
    assert log["removed_reasons"] == {"candidate deleted": 1, "now rejected: hallucination": 1}
    removed = {r["candidate_id"]: r["reason"] for r in log["listed"]["removed"]}
    assert removed == {changed["rejected"].pk: "now rejected: hallucination",
                       changed["deleted_id"]: "candidate deleted"}
    assert [r["candidate_id"] for r in log["listed"]["edited"]] == [changed["edited"].pk]
    assert [r["candidate_id"] for r in log["listed"]["added"]] == [changed["added"].pk]
    folder = dataset_version_folder(second)
    text = (folder / changelog.CHANGELOG).read_text()
    assert "Since v1." in text and "- removed: 2" in text
    assert f"- candidate {changed['rejected'].pk} (record {changed['rejected'].record_id}, vqa, "\
           "vqa_rad): now rejected: hallucination" in text
    # The index and the changelog are among the published files, with their hashes.
    assert {changelog.ROWS_FILE, changelog.CHANGELOG} <= set(second.manifest["files"])
    # export_diff prints the same changelog.
    out = StringIO()
    call_command("export_diff", "--project", project.slug, "v1", "v2", stdout=out)
    assert out.getvalue().strip() == text.strip()


def test_changelog_counts_a_row_the_build_left_out_with_its_reason(project, vqa_rad):
    _build(project)
    kept = Candidate.objects.filter(project=project).order_by("id").first()
    # An answer carrying the separator cannot be published: the build says so.
    Candidate.objects.filter(pk=kept.pk).update(response="a <reserved08706> b")
    log = _build(project).manifest["changelog"]
    assert log["removed"] == 1
    (reason,) = log["removed_reasons"]
    assert "separator" in reason or "reserved08706" in reason


def test_export_page_shows_the_changes(project, vqa_rad, admin_user):
    _build(project)
    _edit_between_versions(project, vqa_rad, admin_user)
    second = _build(project)
    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse("export_detail", args=[project.slug, second.number]))
    html = page.content.decode()
    assert "Changes since v1" in html
    assert "<b>1</b> added, <b>2</b> removed, <b>1</b> edited, 147 unchanged" in html
    assert "now rejected: hallucination" in html


def test_export_diff_refuses_unknown_versions(project, vqa_rad):
    _build(project)
    with pytest.raises(CommandError, match="v9: no finished version"):
        call_command("export_diff", "--project", project.slug, "v1", "v9")
