"""Images in object storage: django-storages' S3 backend against a local S3-compatible HTTP
server (moto's), through the import (its image pool included), the image view, the image
scorer's fingerprints, generation's and evaluation's reads, and exports that copy or embed."""

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import uuid

import boto3
import pyarrow.parquet as pq
import pytest
from django.urls import reverse
from moto.server import ThreadedMotoServer

from medmax_review.scoring.fingerprints import image_fingerprints_ensure
from medmax_review.sources import image_files
from medmax_review.sources.image_pool import POOL_MIN
from medmax_review.sources.images import image_store
from medmax_review.sources.models import ImageAsset, SourceRecord
from medmax_review.sources.services import records_import
from tests.conftest import PASSWORD
from tests.exports.conftest import approve_records, export, read_jsonl
from tests.sources.conftest import png_bytes, write_jsonl

pytestmark = pytest.mark.django_db
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings, monkeypatch):
    """A fresh bucket, and the images' storage pointed at it; yields a function listing its keys."""
    # boto3 reads credentials from the environment, as in production.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    name = f"images-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    client.create_bucket(Bucket=name)
    settings.STORAGES = {**settings.STORAGES, "images": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": name, "endpoint_url": s3_endpoint, "region_name": REGION},
    }}

    class Bucket:
        def keys(self) -> set[str]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=name)
            return {o["Key"] for page in pages for o in page.get("Contents", [])}

        def get(self, key: str) -> bytes:
            return client.get_object(Bucket=name, Key=key)["Body"].read()

        def delete(self, key: str) -> None:
            client.delete_object(Bucket=name, Key=key)

    return Bucket()


def _rows_with_images(folder, count):
    """`count` distinct images, each used by two rows."""
    (folder / "img").mkdir(parents=True)
    rows = []
    for i in range(count):
        (folder / "img" / f"{i}.png").write_bytes(png_bytes(size=(8, 8 + i), color=i % 256))
        for half in ("a", "b"):
            rows.append({"id": f"r{i}{half}", "image": f"img/{i}.png", "question": f"Q {i}?",
                         "answer": "yes", "source": "s3_set", "license": "CC0-1.0"})
    return write_jsonl(folder / "rows.jsonl", rows)


def test_import_writes_every_new_image_to_the_bucket_and_none_to_disk(
        project, bucket, tmp_path, settings):
    # given enough new images that the import verifies them in its process pool
    count = POOL_MIN + 6
    path = _rows_with_images(tmp_path / "data", count)
    # when imported with the images in object storage
    report = records_import(project=project, path=path)
    # then every image is one object named by its content hash, with the file's own bytes
    assert report.errors == [] and report.created == 2 * count
    assets = list(ImageAsset.objects.all())
    assert len(assets) == count
    assert bucket.keys() == {a.file for a in assets}
    for i in (0, count - 1):
        record = SourceRecord.objects.get(external_id=f"r{i}b")
        data = bucket.get(record.image.file)
        assert data == (tmp_path / "data" / "img" / f"{i}.png").read_bytes()
        assert image_files.read(record.image.file) == data
    # and nothing was written under MEDIA_ROOT
    assert not (settings.MEDIA_ROOT / "images").exists()
    # and importing again stores nothing more
    again = records_import(project=project, path=path)
    assert again.errors == [] and ImageAsset.objects.count() == count
    assert len(bucket.keys()) == count


def test_few_images_are_stored_without_the_pool(project, bucket, tmp_path, settings):
    path = _rows_with_images(tmp_path / "data", 3)
    report = records_import(project=project, path=path)
    assert report.errors == [] and len(bucket.keys()) == 3
    assert not (settings.MEDIA_ROOT / "images").exists()


def test_image_view_serves_the_object_and_404s_once_it_is_gone(client, reviewer, project, bucket):
    asset = image_store(data=png_bytes(color=77))
    SourceRecord.objects.create(project=project, source="s", external_id="1", image=asset)
    assert bucket.keys() == {asset.file}
    client.login(username=reviewer.username, password=PASSWORD)
    url = reverse("image_file", args=[asset.sha256])
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == png_bytes(color=77)
    # A missing object is a missing image, not a server error.
    bucket.delete(asset.file)
    assert client.get(url).status_code == 404


def test_image_fingerprints_read_from_the_bucket(project, bucket):
    asset = image_store(data=png_bytes(size=(80, 96), color=30))
    fingerprint = image_fingerprints_ensure(assets=[asset])[asset.id]
    assert fingerprint.decodable and (fingerprint.width, fingerprint.height) == (80, 96)
    missing = image_store(data=png_bytes(size=(70, 70), color=31))
    bucket.delete(missing.file)
    broken = image_fingerprints_ensure(assets=[missing])[missing.id]
    assert not broken.decodable and "FileNotFoundError" in broken.error


@pytest.fixture
def approved_from_bucket(project, bucket, tmp_path):
    path = _rows_with_images(tmp_path / "data", 4)
    assert records_import(project=project, path=path).errors == []
    records = list(SourceRecord.objects.filter(project=project).order_by("id"))
    approve_records(project, records)
    return records


def test_export_copies_images_from_the_bucket_checked_against_their_hash(
        project, approved_from_bucket, bucket, tmp_path):
    version, folder = export(project, tmp_path / "out")
    rows = read_jsonl(folder / "data.jsonl")
    assert len(rows) == 8 and version.manifest["images"]["count"] == 4
    for row in rows:
        sha = row["image_path"].removeprefix("images/").split(".")[0]
        assert hashlib.sha256((folder / row["image_path"]).read_bytes()).hexdigest() == sha
    # An object gone from the bucket leaves its rows out, saying why.
    gone = approved_from_bucket[0].image
    bucket.delete(gone.file)
    version, folder = export(project, tmp_path / "out")
    assert version.manifest["images"]["count"] == 3
    assert len(read_jsonl(folder / "data.jsonl")) == 6
    assert "image file missing from the image store" in json.dumps(version.manifest)


def test_parquet_export_embeds_bytes_fetched_from_the_bucket_and_leaves_no_scratch(
        project, approved_from_bucket, tmp_path):
    version, folder = export(project, tmp_path / "out", format="parquet")
    table = pq.read_table(next((folder / "data").glob("*.parquet")))
    images = [row["image"] for row in table.to_pylist()]
    assert version.manifest["images"]["embedded"] == 8
    by_sha = {a.sha256 for a in ImageAsset.objects.all()}
    assert {hashlib.sha256(i["bytes"]).hexdigest() for i in images} == by_sha
    # The fetched copies were scratch: only the version's own folder is left beside it.
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_reads_name_the_image_in_object_storage(project, bucket):
    asset = image_store(data=png_bytes(color=5))
    assert image_files.local_path(asset.file) is None
    assert image_files.exists(asset.file)
    assert image_files.read(asset.file) == png_bytes(color=5)
    bucket.delete(asset.file)
    assert not image_files.exists(asset.file)
    with pytest.raises(FileNotFoundError):
        image_files.read(asset.file)


def _settings_storages(**env) -> subprocess.CompletedProcess:
    code = ("import django, json; django.setup(); from django.conf import settings;"
            " print(json.dumps(settings.STORAGES.get('images')))")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "medmax_review.settings", **env},
    )


def test_the_environment_names_the_backend_and_its_options():
    done = _settings_storages(
        IMAGE_STORAGE_BACKEND="storages.backends.s3.S3Storage",
        IMAGE_STORAGE_OPTIONS='{"bucket_name": "medmax-images", "region_name": "eu-west-1"}',
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "medmax-images", "region_name": "eu-west-1"},
    }
    bad = _settings_storages(IMAGE_STORAGE_BACKEND="storages.backends.s3.S3Storage",
                             IMAGE_STORAGE_OPTIONS="{bucket_name: x}")
    assert bad.returncode != 0 and "IMAGE_STORAGE_OPTIONS must be a JSON object" in bad.stderr
    assert json.loads(_settings_storages(IMAGE_STORAGE_BACKEND="").stdout) is None


def test_local_files_stay_the_default(project, settings):
    asset = image_store(data=png_bytes(color=6))
    assert image_files.local_path(asset.file) == settings.MEDIA_ROOT / asset.file
    assert (settings.MEDIA_ROOT / asset.file).read_bytes() == png_bytes(color=6)
    assert io.BytesIO(image_files.read(asset.file)).getvalue() == png_bytes(color=6)
