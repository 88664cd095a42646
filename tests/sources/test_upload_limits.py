"""Uploads and archives cannot take the disk or the memory, and are not kept forever."""

import io
import json
import zipfile
from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from medmax_review.sources import services
from medmax_review.sources.models import ImportRun
from medmax_review.sources.services import records_import
from tests.conftest import PASSWORD
from tests.sources.conftest import demo_row, png_bytes, write_jsonl, zip_bundle_bytes


def test_upload_over_the_limit_is_refused_while_it_streams(client, project, admin_user, settings):
    settings.MEDMAX_MAX_UPLOAD_BYTES = 50_000
    client.login(username=admin_user.username, password=PASSWORD)
    big = SimpleUploadedFile("big.jsonl", b"x" * 200_000, content_type="application/json")

    response = client.post(reverse("import_upload", args=[project.slug]),
                           {"format": "auto", "file": big})

    assert response.status_code == 400
    assert "the limit is 0.0 MB (MEDMAX_MAX_UPLOAD_BYTES)" in response.content.decode()
    assert not ImportRun.objects.exists()
    assert not (settings.MEDIA_ROOT / "uploads").exists()


def test_upload_import_is_still_csrf_protected(project, admin_user):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.login(username=admin_user.username, password=PASSWORD)
    upload = SimpleUploadedFile("set.zip", zip_bundle_bytes(), content_type="application/zip")

    response = strict.post(reverse("import_upload", args=[project.slug]), {"file": upload})

    assert response.status_code == 403 and not ImportRun.objects.exists()


def test_a_line_over_the_limit_is_refused_unread(project, image_folder, settings):
    settings.MEDMAX_MAX_LINE_BYTES = 1000
    long = json.dumps(demo_row(1, caption="word " * 400))
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(0), long, demo_row(2)])

    report = records_import(project=project, path=path)

    assert report.created == 2
    assert (report.errors[0].line, report.errors[0].message) == (
        2, "line is longer than 1000 bytes (MEDMAX_MAX_LINE_BYTES); skipped")


def _zip(entries: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_zip_images_the_rows_never_name_are_not_extracted(project, tmp_path, monkeypatch):
    bundle = tmp_path / "set.zip"
    bundle.write_bytes(_zip({
        "rows.jsonl": json.dumps(demo_row(0)) + "\n",
        "img/0.png": png_bytes(color=1),
        **{f"unused/{i}.png": png_bytes(color=i) for i in range(20)},
    }))
    written = []
    original = services.archives.ZipSource.extract

    def spy(self, destination):
        result = original(self, destination)
        if result == "":
            written.append(destination.relative_to(self.root).as_posix())
        return result

    monkeypatch.setattr(services.archives.ZipSource, "extract", spy)

    report = records_import(project=project, path=bundle)

    assert (report.created, report.errors) == (1, [])
    assert sorted(written) == ["img/0.png", "rows.jsonl"]


def test_zip_bomb_entries_are_refused_before_they_are_written(project, tmp_path, settings):
    settings.MEDMAX_MAX_UPLOAD_BYTES = 5 * 1024 * 1024
    zeros = b"\0" * (4 * 1024 * 1024)  # each under the upload limit; three over the budget
    bundle = tmp_path / "bomb.zip"
    bundle.write_bytes(_zip({
        "rows.jsonl": "".join(json.dumps(demo_row(i, image=f"img/z{i}.png")) + "\n"
                              for i in range(3)),
        **{f"img/z{i}.png": zeros for i in range(3)},
        "img/huge.png": b"\0" * (6 * 1024 * 1024),  # over the upload limit on its own
    }))
    assert bundle.stat().st_size < 100_000

    report = records_import(project=project, path=bundle)

    assert report.created == 0
    by_where = {(e.file, e.line): e.message for e in report.errors}
    assert "over the upload limit" in by_where[("bomb.zip:img/huge.png", 0)]
    assert "expands to more than twice the upload limit" in by_where[("bomb.zip:rows.jsonl", 3)]
    assert not (tmp_path / "img").exists()


def _launched_run(project, admin_user, data: bytes, name="set.zip"):
    upload = SimpleUploadedFile(name, data)
    return services.import_run_launch(project=project, upload=upload, fmt="auto", options={},
                                      user=admin_user)


def test_upload_removed_after_a_successful_import_and_kept_after_a_failed_one(
    project, admin_user, settings
):
    good = _launched_run(project, admin_user, zip_bundle_bytes())
    bad = _launched_run(project, admin_user, b"{not json at all\n", name="bad.jsonl")
    good_file = settings.MEDIA_ROOT / good.upload_path
    bad_file = settings.MEDIA_ROOT / bad.upload_path

    services.import_run_execute(import_run_id=good.pk)
    services.import_run_execute(import_run_id=bad.pk)

    assert not good_file.exists() and not good_file.parent.exists()
    assert ImportRun.objects.get(pk=good.pk).upload_path == ""
    assert bad_file.is_file()

    # The sweep removes a failed upload once its keeping time is over, not before.
    assert services.uploads_sweep() == 0
    later = timezone.now() + timedelta(hours=settings.MEDMAX_FAILED_UPLOAD_KEEP_HOURS + 1)
    assert services.uploads_sweep(now=later) == 1
    assert not bad_file.exists()
