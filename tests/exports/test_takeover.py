"""A version whose worker died is taken over and rebuilt byte for byte; admins may retry."""

import datetime as dt
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from medmax_review.exports import build, changelog, files, services
from medmax_review.exports.models import DatasetVersion
from medmax_review.projects import services as project_services
from tests.exports.conftest import export, login

pytestmark = pytest.mark.django_db

OPTIONS = {"split": "0.9,0.05,0.05", "images": "copy"}


def folder_contents(folder) -> dict[str, bytes]:
    """Every file under the folder (hidden ones too) by relative path; the manifest without the
    fields that name the version or compare it with the previous one, and without the
    changelog (a second version of the same rows says "unchanged since v1")."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == changelog.CHANGELOG:
            continue
        if path.name == services.MANIFEST:
            manifest = json.loads(data)
            manifest.pop("version"), manifest.pop("created_at"), manifest.pop("changelog")
            manifest["files"].pop(changelog.CHANGELOG)
            data = json.dumps(manifest, sort_keys=True).encode()
        out[str(path.relative_to(folder))] = data
    return out


def partials(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".partial"))


def died_mid_build(project, *, silent_for: int) -> tuple[DatasetVersion, object]:
    """A version claimed by a worker that wrote part of it and then fell silent."""
    version = services.dataset_version_create(project=project, options=OPTIONS)
    assert services.dataset_version_claim(version_id=version.pk) == (1, False)
    folder = services.dataset_version_folder(version)
    (folder / "images").mkdir(parents=True)
    (folder / ".train.jsonl.partial").write_text('{"text":"half a li')
    (folder / "test.jsonl").write_text("committed by the dead build\n")
    (folder / "images" / ".0123.jpg.partial").write_bytes(b"\xff\xd8")
    DatasetVersion.objects.filter(pk=version.pk).update(
        rows_total=150, rows_done=40,
        heartbeat_at=timezone.now() - dt.timedelta(seconds=silent_for),
    )
    return version, folder


def test_dataset_version_build_takes_over_stale_version_and_rebuilds_identically(
    project, vqa_rad, settings
):
    # given an uninterrupted export and a second version of the same set whose worker died
    settings.EXPORT_STALE_SECONDS = 30
    _, reference = export(project, **OPTIONS)
    version, folder = died_mid_build(project, silent_for=31)
    assert partials(folder)
    # when a worker receives its task again
    built = services.dataset_version_build(version_id=version.pk)
    # then it took the build over, removed the leftovers and wrote the same bytes
    assert built.status == "done", built.error
    assert (built.attempts, built.rows_done, built.number) == (2, 150, 2)
    assert partials(folder) == []
    assert folder_contents(folder) == folder_contents(reference)


def test_dataset_version_build_leaves_live_worker_alone(project, vqa_rad, settings):
    # given a running version whose worker beat 5 s ago, within the limit
    settings.EXPORT_STALE_SECONDS = 30
    version, folder = died_mid_build(project, silent_for=5)
    # when the task is delivered to a second worker
    built = services.dataset_version_build(version_id=version.pk)
    # then that worker does nothing: the version and its files stay with the first
    assert (built.status, built.attempts, built.rows_done) == ("running", 1, 40)
    assert partials(folder) == [".0123.jpg.partial", ".train.jsonl.partial"]


def test_dataset_version_claim_stale_version_has_one_winner(project, vqa_rad, settings):
    settings.EXPORT_STALE_SECONDS = 30
    version, _ = died_mid_build(project, silent_for=60)
    assert services.dataset_version_claim(version_id=version.pk) == (2, True)
    assert services.dataset_version_claim(version_id=version.pk) is None


def test_dataset_version_build_superseded_stops_without_touching_files(
    project, vqa_rad, settings
):
    # given a build that stalled past the limit while another worker took the version over
    settings.EXPORT_STALE_SECONDS = 30
    version, folder = died_mid_build(project, silent_for=60)
    assert services.dataset_version_claim(version_id=version.pk) == (2, True)
    stalled = build._Build(version=version, folder=folder, attempt=1)
    # when the stalled build wakes up and beats, then it learns it lost the version
    with pytest.raises(build._Superseded):
        stalled.beat(force=True)
    assert partials(folder) == [".0123.jpg.partial", ".train.jsonl.partial"]
    assert DatasetVersion.objects.get(pk=version.pk).attempts == 2


def failed_version(project) -> DatasetVersion:
    version = services.dataset_version_create(project=project, options=OPTIONS)
    # The folder exists already: the build refuses to write into it and fails.
    services.dataset_version_folder(version).mkdir(parents=True)
    failed = services.dataset_version_build(version_id=version.pk)
    assert failed.status == "failed" and "already exists" in failed.error
    return failed


def test_dataset_version_retry_requeues_same_number_and_builds(
    project, vqa_rad, django_capture_on_commit_callbacks
):
    version = failed_version(project)
    services.dataset_version_folder(version).rmdir()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.dataset_version_retry(version=version)
    version.refresh_from_db()
    assert (version.status, version.error, version.number) == ("pending", "", 1)
    assert len(callbacks) == 1
    built = services.dataset_version_build(version_id=version.pk)
    assert (built.status, built.number, built.manifest["rows"]) == ("done", 1, 150)
    assert DatasetVersion.objects.filter(project=project).count() == 1


def test_dataset_version_retry_refuses_done_and_live_versions(project, vqa_rad, settings):
    settings.EXPORT_STALE_SECONDS = 30
    done, _ = export(project)
    live, _ = died_mid_build(project, silent_for=5)
    assert not services.dataset_version_retry(version=done)
    assert not services.dataset_version_retry(version=live)
    assert DatasetVersion.objects.get(pk=live.pk).status == "running"


@pytest.mark.parametrize("who,status", [("admin_user", 302), ("adjudicator", 403),
                                        ("reviewer", 403), ("outsider", 404)])
def test_export_retry_needs_admin(client, project, vqa_rad, request, who, status):
    version = failed_version(project)
    services.dataset_version_folder(version).rmdir()
    response = login(client, request.getfixturevalue(who)).post(
        reverse("export_retry", args=[project.slug, version.number])
    )
    assert response.status_code == status
    version.refresh_from_db()
    assert version.status == ("pending" if status == 302 else "failed")


def test_export_retry_get_not_allowed(client, project, admin_user, vqa_rad):
    version = failed_version(project)
    response = login(client, admin_user).get(
        reverse("export_retry", args=[project.slug, version.number])
    )
    assert response.status_code == 405


def test_export_retry_done_version_says_nothing_changed(client, project, admin_user, vqa_rad):
    version, _ = export(project)
    response = login(client, admin_user).post(
        reverse("export_retry", args=[project.slug, version.number]), follow=True
    )
    assert "Export v1 is done; nothing changed." in response.content.decode()


def test_export_detail_shows_stale_version_and_retry_to_admin_only(
    client, project, admin_user, adjudicator, vqa_rad, settings
):
    settings.EXPORT_STALE_SECONDS = 30
    version, _ = died_mid_build(project, silent_for=95)
    url = reverse("export_detail", args=[project.slug, version.number])
    body = login(client, admin_user).get(url, headers={"HX-Request": "true"}).content.decode()
    assert re.search(r"No progress for 9[56] s", body) and "A worker will retry it" in body
    assert reverse("export_retry", args=[project.slug, version.number]) in body
    assert 'hx-trigger="every 1s"' in body  # keeps polling: the takeover shows up by itself
    client.logout()
    body = login(client, adjudicator).get(url).content.decode()
    assert "No progress for 9" in body and "export_retry" not in body and "/retry/" not in body


def test_export_detail_live_version_is_not_called_stale(client, project, admin_user, vqa_rad, settings):
    settings.EXPORT_STALE_SECONDS = 30
    version, _ = died_mid_build(project, silent_for=5)
    body = login(client, admin_user).get(
        reverse("export_detail", args=[project.slug, version.number])
    ).content.decode()
    assert "No progress" not in body and "/retry/" not in body


@pytest.mark.parametrize("raised,temp_left", [(files.Abandoned, True), (OSError, False)])
def test_tar_write_interrupted_keeps_temp_only_when_abandoned(tmp_path, raised, temp_left):
    # given an archive being written whose progress callback stops it after the first member
    member = tmp_path / "a.bin"
    member.write_bytes(b"x" * 600)
    target = tmp_path / "images.tar"

    def stop():
        # the temporary file exists: a takeover may already have started its own
        assert files.partial_name(target).exists()
        raise raised("stop")

    # when it is stopped, then an abandoned writer leaves the temp file to its new owner
    with pytest.raises(raised):
        files.tar_write(members=[("images/a.bin", member)], target=target, progress=stop)
    assert files.partial_name(target).exists() is temp_left
    assert not target.exists()


def test_export_list_marks_stalled_versions(client, project, admin_user, vqa_rad, settings):
    settings.EXPORT_STALE_SECONDS = 30
    export(project)
    died_mid_build(project, silent_for=60)
    died_mid_build(project, silent_for=5)
    body = login(client, admin_user).get(reverse("export_list", args=[project.slug])).content.decode()
    rows = {m[0]: m[1] for m in re.findall(r">v(\d+)</a></td>(.*?)</tr>", body, re.S)}
    assert "stalled" in rows["2"]
    assert "stalled" not in rows["1"] and "stalled" not in rows["3"]


def test_dataset_version_build_takeover_leaves_another_exports_folder_alone(
    project, vqa_rad, settings, tmp_path
):
    # given a finished export in out/v1, and a version of another project numbered 1 in the
    # same out folder whose worker died before it made its folder
    settings.EXPORT_STALE_SECONDS = 30
    first, folder = export(project, tmp_path / "out")
    before = folder_contents(folder)
    other, _ = project_services.project_get_or_create(slug="other")
    version = services.dataset_version_create(project=other, options={}, out_dir=tmp_path / "out")
    services.dataset_version_claim(version_id=version.pk)
    DatasetVersion.objects.filter(pk=version.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(seconds=60)
    )
    # when a worker takes that version over
    built = services.dataset_version_build(version_id=version.pk)
    # then it fails, naming what is there, and the finished export is untouched
    assert built.status == "failed"
    assert built.error == f"the folder {folder} holds export v1 of chest; nothing was written"
    assert folder_contents(folder) == before


@pytest.mark.parametrize("fmt", ["sharegpt", "llava", "parquet"])
def test_dataset_version_build_takeover_rebuilds_each_format_identically(
    fmt, project, vqa_rad, settings
):
    # given an uninterrupted export, and a second one whose worker died having left a partial
    # shard, a partial JSON array and a committed card and dataset_info.json
    settings.EXPORT_STALE_SECONDS = 30
    options = {**OPTIONS, "format": fmt}
    _, reference = export(project, **options)
    version = services.dataset_version_create(project=project, options=options)
    services.dataset_version_claim(version_id=version.pk)
    folder = services.dataset_version_folder(version)
    (folder / "data").mkdir(parents=True)
    (folder / "data" / ".train-00000.parquet.partial").write_bytes(b"PAR1 half a shard")
    (folder / ".train.json.partial").write_text('[\n{"id":"1"')
    (folder / "README.md").write_text("written by the dead build\n")
    (folder / "dataset_info.json").write_text("{}\n")
    DatasetVersion.objects.filter(pk=version.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(seconds=31)
    )
    # when another worker takes it over, then it writes the same bytes and nothing else
    built = services.dataset_version_build(version_id=version.pk)
    assert built.status == "done", built.error
    assert folder_contents(folder) == folder_contents(reference)
