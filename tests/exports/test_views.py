import io
import tarfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from medmax_review.exports import services
from medmax_review.exports.models import DatasetVersion
from medmax_review.review.models import Candidate
from tests.exports.conftest import export, login

pytestmark = pytest.mark.django_db


def test_export_list_shows_form_and_versions(client, project, admin_user, vqa_rad):
    export(project)
    response = login(client, admin_user).get(reverse("export_list", args=[project.slug]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="split"' in body and "v1" in body and "CC0-1.0" in body


def test_export_list_shows_rows_published_and_left_out(client, project, admin_user, vqa_rad):
    # given a done version with one row left out, and a pending one
    bad = Candidate.objects.filter(project=project).order_by("id").first()
    Candidate.objects.filter(pk=bad.pk).update(response="   ")
    export(project)
    services.dataset_version_create(project=project, user=admin_user, options={})
    # when the list is shown, then the done version gives its counts, the pending one none
    versions = login(client, admin_user).get(
        reverse("export_list", args=[project.slug])
    ).context["versions"]
    assert [(v.number, v.rows, v.rows_left_out) for v in versions] == [(2, None, None), (1, 149, 1)]
    assert "<td>149</td>" in client.get(reverse("export_list", args=[project.slug])).content.decode()


def test_export_list_queries_do_not_grow_with_versions(client, project, admin_user):
    # given versions made by a user, by the command line, and more by the user
    services.dataset_version_create(project=project, user=admin_user, options={})
    services.dataset_version_create(project=project, options={})
    url = reverse("export_list", args=[project.slug])
    login(client, admin_user)
    response = client.get(url)
    body = response.content.decode()
    assert admin_user.username in body and "command line" in body
    with CaptureQueriesContext(connection) as two:
        client.get(url)
    for _ in range(3):
        services.dataset_version_create(project=project, user=admin_user, options={})
    # when the list is shown again, then it takes as many queries as with two versions
    with CaptureQueriesContext(connection) as five:
        client.get(url)
    assert len(five.captured_queries) == len(two.captured_queries)


def test_export_list_launch_creates_pending_version_built_after_commit(
    client, project, admin_user, vqa_rad, django_capture_on_commit_callbacks
):
    login(client, admin_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("export_list", args=[project.slug]),
            {"format": "chat", "images": "archive", "split": "0.9,0.05,0.05", "min_agreeing": "0",
             "licenses": ["CC0-1.0"]},
        )
    version = DatasetVersion.objects.get(project=project)
    assert response.status_code == 302
    assert response["Location"] == reverse("export_detail", args=[project.slug, 1])
    assert version.status == "pending" and version.created_by == admin_user
    assert version.options["split"] == [0.9, 0.05, 0.05] and version.options["licenses"] == ["CC0-1.0"]
    assert len(callbacks) == 1  # the build is enqueued only once the row is committed


def test_export_list_bad_split_is_named(client, project, admin_user):
    response = login(client, admin_user).post(
        reverse("export_list", args=[project.slug]),
        {"format": "medmax", "images": "copy", "split": "0.9,0.2", "min_agreeing": "0"},
    )
    assert response.status_code == 400
    assert "split: &#x27;0.9,0.2&#x27; must be three non-negative proportions" in response.content.decode()
    assert not DatasetVersion.objects.exists()


@pytest.mark.parametrize("who,status", [("adjudicator", 403), ("reviewer", 403), ("outsider", 404)])
def test_export_list_needs_admin(client, project, request, who, status):
    user = request.getfixturevalue(who)
    assert login(client, user).get(reverse("export_list", args=[project.slug])).status_code == status
    response = client.post(reverse("export_list", args=[project.slug]), {"format": "medmax"})
    assert response.status_code == status
    assert not DatasetVersion.objects.exists()


def test_export_detail_polls_until_done(client, project, admin_user, vqa_rad):
    version = services.dataset_version_create(project=project, options={})
    login(client, admin_user)
    url = reverse("export_detail", args=[project.slug, version.number])
    pending = client.get(url, headers={"HX-Request": "true"})
    assert pending.status_code == 200
    body = pending.content.decode()
    assert 'hx-trigger="every 1s"' in body and "<html" not in body
    services.dataset_version_build(version_id=version.pk)
    done = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in done and "150</b> rows published" in done
    assert "data.jsonl" in done and "Download all" in done


def test_export_download_file_and_tar(client, project, adjudicator, vqa_rad):
    version, folder = export(project, split="0.9,0.05,0.05")
    login(client, adjudicator)
    url = reverse("export_download", args=[project.slug, version.number])
    response = client.get(url, {"file": "train.jsonl"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == (folder / "train.jsonl").read_bytes()
    assert 'filename="train.jsonl"' in response["Content-Disposition"]
    whole = client.get(url)
    data = b"".join(whole.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert tar.extractfile("chest-v1/manifest.json").read() == (
            folder / "manifest.json"
        ).read_bytes()
    assert "chest-v1/test.jsonl" in names and "chest-v1/README.md" in names
    # splits, README and ATTRIBUTION, the changelog and its row index, images, manifest
    assert len(names) == 3 + 2 + 2 + 75 + 1


def test_export_download_refuses_names_outside_the_manifest(client, project, admin_user, vqa_rad):
    version, _ = export(project)
    login(client, admin_user)
    url = reverse("export_download", args=[project.slug, version.number])
    for name in ("../../etc/passwd", "/etc/passwd", "train.jsonl", ".data.jsonl.partial"):
        assert client.get(url, {"file": name}).status_code == 404


@pytest.mark.parametrize("who,status", [("reviewer", 403), ("outsider", 404)])
def test_export_download_denied(client, project, vqa_rad, request, who, status):
    version, _ = export(project)
    login(client, request.getfixturevalue(who))
    url = reverse("export_download", args=[project.slug, version.number])
    assert client.get(url, {"file": "data.jsonl"}).status_code == status
    assert client.get(url).status_code == status
    detail = reverse("export_detail", args=[project.slug, version.number])
    assert client.get(detail).status_code == status


def test_export_download_of_unfinished_version_is_404(client, project, admin_user):
    version = services.dataset_version_create(project=project, options={})
    login(client, admin_user)
    url = reverse("export_download", args=[project.slug, version.number])
    assert client.get(url).status_code == 404


def test_export_detail_page_shows_summary_escaped(client, project, admin_user, vqa_rad):
    # given a source name carrying markup and one row left out
    from medmax_review.review.models import Candidate
    from medmax_review.sources.models import SourceRecord

    SourceRecord.objects.filter(project=project).update(source="<script>alert(1)</script>")
    bad = Candidate.objects.filter(project=project).order_by("id").first()
    Candidate.objects.filter(pk=bad.pk).update(instruction="")
    version, _ = export(project)
    body = login(client, admin_user).get(
        reverse("export_detail", args=[project.slug, version.number])
    ).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "Left out" in body and "empty instruction" in body and "149</b> rows published" in body


def test_export_detail_page_says_why_a_version_failed(client, project, admin_user, tmp_path):
    (tmp_path / "v1").mkdir()
    version = services.dataset_version_create(project=project, options={}, out_dir=tmp_path)
    version = services.dataset_version_build(version_id=version.pk)
    body = login(client, admin_user).get(
        reverse("export_detail", args=[project.slug, version.number])
    ).content.decode()
    assert version.status == "failed"
    assert "The export failed and published nothing" in body and "already exists" in body


def test_export_form_offers_every_format_and_names_a_refused_images_option(
    client, project, admin_user
):
    login(client, admin_user)
    url = reverse("export_list", args=[project.slug])
    body = client.get(url).content.decode()
    for fmt in ("medmax", "chat", "sharegpt", "llava", "parquet"):
        assert f'value="{fmt}"' in body
    response = client.post(url, {"format": "parquet", "images": "archive", "min_agreeing": "0"})
    assert response.status_code == 400
    assert response.context["form"].errors["images"] == [
        "images: parquet files hold the image bytes themselves; choose copy or none"
    ]
    assert not DatasetVersion.objects.exists()
    response = client.post(url, {"format": "sharegpt", "images": "copy", "min_agreeing": "0",
                                 "task_names": "source"})
    assert response.status_code == 302
    version = DatasetVersion.objects.get()
    assert (version.format, version.options["task_names"]) == ("sharegpt", "source")
