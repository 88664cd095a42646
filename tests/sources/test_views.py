import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from medmax_review.projects import services as project_services
from medmax_review.projects.models import ADMIN, REVIEWER
from medmax_review.sources import services
from medmax_review.sources.images import image_store
from medmax_review.sources.models import ImportRun, SourceRecord
from tests.conftest import PASSWORD
from tests.sources.conftest import png_bytes, zip_bundle_bytes


def _login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _zip_upload(name="set.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, zip_bundle_bytes(), content_type="application/zip")


def test_import_upload_admin_sees_form_and_past_runs(client, project, admin_user):
    services.import_run_create(project=project, file_name="older.jsonl", fmt="jsonl", options={})

    response = _login(client, admin_user).get(reverse("import_upload", args=[project.slug]))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="file"' in html and 'enctype="multipart/form-data"' in html
    assert "older.jsonl" in html and "command line" in html


def test_import_upload_reviewer_forbidden(client, project, reviewer):
    response = _login(client, reviewer).get(reverse("import_upload", args=[project.slug]))
    assert response.status_code == 403


def test_import_upload_outsider_not_found(client, project, outsider):
    url = reverse("import_upload", args=[project.slug])
    assert _login(client, outsider).get(url).status_code == 404
    assert client.post(url, {"format": "auto", "file": _zip_upload()}).status_code == 404
    assert not ImportRun.objects.exists()


def test_import_upload_anonymous_redirected_to_login(client, project):
    response = client.get(reverse("import_upload", args=[project.slug]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_import_upload_post_saves_file_and_enqueues(
    client, project, admin_user, settings, django_capture_on_commit_callbacks
):
    _login(client, admin_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("import_upload", args=[project.slug]),
            {"format": "auto", "file": _zip_upload("../../evil name.zip"), "strict": ""},
        )

    run = ImportRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("import_run", args=[project.slug, run.pk])
    assert len(callbacks) == 1  # the task is sent only after the run is committed
    assert run.status == ImportRun.PENDING and run.launched_by == admin_user
    assert run.options == {"strict": False, "approved": False, "map": {}}
    saved = settings.MEDIA_ROOT / run.upload_path
    assert saved.is_file() and saved.parent.parent == settings.MEDIA_ROOT / "uploads"
    assert ".." not in run.upload_path and " " not in saved.name

    # What the task does, run here in-process: then the page shows the report.
    services.import_run_execute(import_run_id=run.pk)
    assert services.import_run_execute(import_run_id=run.pk) is None  # a redelivery does nothing
    run.refresh_from_db()
    assert (run.status, run.rows_total, run.rows_done, run.created) == ("done", 3, 3, 2)
    page = client.get(reverse("import_run", args=[project.slug, run.pk]))
    html = page.content.decode()
    assert "hx-trigger" not in html  # finished: no more polling
    assert "evil_name.zip:rows.jsonl" in html and "bad JSON" in html


def test_import_upload_missing_file_shows_error(client, project, admin_user):
    response = _login(client, admin_user).post(
        reverse("import_upload", args=[project.slug]), {"format": "auto"}
    )
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    assert not ImportRun.objects.exists()


def test_import_run_progress_partial_polls_while_running(client, project, admin_user):
    run = services.import_run_create(project=project, file_name="x.jsonl", fmt="jsonl", options={})
    ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.RUNNING, rows_total=10, rows_done=4)

    response = _login(client, admin_user).get(
        reverse("import_run", args=[project.slug, run.pk]), HTTP_HX_REQUEST="true"
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # the partial only
    assert 'hx-trigger="every 1s"' in html
    assert '<progress max="10" value="4"' in html


def test_import_run_of_other_project_not_found(client, project, admin_user):
    other, _ = project_services.project_get_or_create(slug="other")
    run = services.import_run_create(project=other, file_name="x.jsonl", fmt="jsonl", options={})
    response = _login(client, admin_user).get(reverse("import_run", args=[project.slug, run.pk]))
    assert response.status_code == 404


def test_import_run_reviewer_forbidden(client, project, reviewer):
    run = services.import_run_create(project=project, file_name="x.jsonl", fmt="jsonl", options={})
    response = _login(client, reviewer).get(reverse("import_run", args=[project.slug, run.pk]))
    assert response.status_code == 403


@pytest.fixture
def open_image(project):
    asset = image_store(data=png_bytes(color=77))
    SourceRecord.objects.create(project=project, source="s", external_id="1", image=asset)
    return asset


@pytest.fixture
def credentialed_image(project):
    asset = image_store(data=png_bytes(color=99))
    SourceRecord.objects.create(
        project=project, source="mimic", external_id="1", image=asset, credential="yes"
    )
    return asset


def test_image_file_member_gets_bytes(client, reviewer, open_image):
    response = _login(client, reviewer).get(reverse("image_file", args=[open_image.sha256]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == png_bytes(color=77)
    # Immutable by content hash, private because access depends on the user.
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"


def test_image_file_outsider_not_found(client, outsider, open_image):
    response = _login(client, outsider).get(reverse("image_file", args=[open_image.sha256]))
    assert response.status_code == 404


def test_image_file_anonymous_redirected(client, open_image):
    response = client.get(reverse("image_file", args=[open_image.sha256]))
    assert response.status_code == 302


def test_image_file_unknown_sha_not_found(client, reviewer, open_image):
    response = _login(client, reviewer).get(reverse("image_file", args=["0" * 64]))
    assert response.status_code == 404


def test_image_file_credentialed_needs_access(client, reviewer, admin_user, credentialed_image):
    url = reverse("image_file", args=[credentialed_image.sha256])
    assert _login(client, reviewer).get(url).status_code == 404
    client.logout()
    assert _login(client, admin_user).get(url).status_code == 200  # admin_user is credentialed


def test_image_file_credentialed_visible_through_open_record(
    client, project, reviewer, credentialed_image
):
    other, _ = project_services.project_get_or_create(slug="open-set")
    project_services.membership_set(project=other, user=reviewer, role=REVIEWER)
    SourceRecord.objects.create(
        project=other, source="open", external_id="9", image=credentialed_image
    )
    url = reverse("image_file", args=[credentialed_image.sha256])
    assert _login(client, reviewer).get(url).status_code == 200


def test_image_file_credentialed_member_of_other_project_only(
    client, project, credentialed_image
):
    other, _ = project_services.project_get_or_create(slug="elsewhere")
    stranger = project_services.user_create(username="s", password=PASSWORD, credentialed=True)
    project_services.membership_set(project=other, user=stranger, role=ADMIN)
    url = reverse("image_file", args=[credentialed_image.sha256])
    assert _login(client, stranger).get(url).status_code == 404


@pytest.fixture
def ct_presets(project, demo_data):
    services.records_import(project=project, path=demo_data / "dicom" / "CT_small.dcm")
    record = SourceRecord.objects.get()
    return record, {n: p["sha256"] for n, p in record.image.dicom["presets"].items()}


def test_image_file_preset_served_to_member(client, reviewer, ct_presets):
    _, presets = ct_presets
    client = _login(client, reviewer)
    for sha in presets.values():
        response = client.get(reverse("image_file", args=[sha]))
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        body = b"".join(response.streaming_content)
        assert hashlib.sha256(body).hexdigest() == sha


def test_image_file_preset_outsider_not_found(client, outsider, ct_presets):
    _, presets = ct_presets
    client = _login(client, outsider)
    for sha in presets.values():
        assert client.get(reverse("image_file", args=[sha])).status_code == 404


def test_image_file_preset_follows_credential_of_main_image(
    client, reviewer, admin_user, ct_presets
):
    record, presets = ct_presets
    record.credential = "yes"
    record.save()
    url = reverse("image_file", args=[presets["lung"]])
    assert _login(client, reviewer).get(url).status_code == 404
    client.logout()
    assert _login(client, admin_user).get(url).status_code == 200  # admin_user is credentialed


def test_import_upload_with_a_column_mapping(
    client, project, admin_user, django_capture_on_commit_callbacks
):
    _login(client, admin_user)
    upload = SimpleUploadedFile("slake.json", b"[]", content_type="application/json")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("import_upload", args=[project.slug]), {
            "format": "json", "file": upload, "map": "image=img_name  lang=q_lang"})

    assert response.status_code == 302
    run = ImportRun.objects.get()
    assert run.format == "json" and run.options["map"] == {"image": "img_name", "language": "q_lang"}


def test_import_upload_bad_mapping_is_named(client, project, admin_user):
    upload = SimpleUploadedFile("rows.json", b"[]", content_type="application/json")
    response = _login(client, admin_user).post(reverse("import_upload", args=[project.slug]), {
        "format": "auto", "file": upload, "map": "picture=img_name"})

    assert response.status_code == 400
    assert "unknown field &#x27;picture&#x27;" in response.content.decode()
    assert not ImportRun.objects.exists()


def test_import_run_page_lists_the_first_problems_and_counts_the_rest(client, project, admin_user):
    run = services.import_run_create(project=project, file_name="x.json", fmt="json", options={})
    errors = [{"file": "x.json", "line": i, "unit": "item", "field": "image",
               "message": f"problem <b>{i}</b>"} for i in range(3)]
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.DONE, errors=errors, problems=1203, rejected=1200)

    html = _login(client, admin_user).get(
        reverse("import_run", args=[project.slug, run.pk])).content.decode()

    assert "<b>1200</b> rows rejected (1203 problems)" in html
    assert "item 2" in html and "problem &lt;b&gt;2&lt;/b&gt;" in html
    assert "… and 1200 more problems, not listed." in html
