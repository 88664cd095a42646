import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from medmax_review.core import medmax
from medmax_review.exports import files, services
from medmax_review.exports.models import DatasetVersion
from medmax_review.projects import services as project_services
from medmax_review.review.models import (
    ADJUDICATE,
    APPROVE,
    APPROVED,
    EDIT,
    REJECT,
    UNDO,
    Candidate,
    Decision,
)
from medmax_review.sources.models import SourceRecord
from medmax_review.sources.services import records_import
from tests.exports.conftest import (
    approve_records,
    data_files,
    export,
    read_jsonl,
    store_demo_image,
)

pytestmark = pytest.mark.django_db


def test_medmax_export_rows_follow_medmax_rules(project, vqa_rad, demo_data):
    # given 150 approved VQA candidates
    # when exported as MedMax JSONL
    version, folder = export(project)
    rows = read_jsonl(folder / "data.jsonl")
    # then every row passes the MedMax checks, with keys in the fixed order and no tokens
    assert len(rows) == 150
    for row in rows:
        assert list(row) == ["text", "image_path", "task", "source", "credential"]
        assert medmax.check_text(row["text"], has_image=True) == []
        assert row["text"].count(medmax.SEPARATOR) == 1
        assert row["text"].startswith(medmax.IMAGE)  # understanding task: image first
        assert row["credential"] == "no"
        sha = row["image_path"].removeprefix("images/").split(".")[0]
        assert hashlib.sha256((folder / row["image_path"]).read_bytes()).hexdigest() == sha
    first = SourceRecord.objects.filter(project=project).order_by("id").first()
    assert rows[0]["text"] == f"{medmax.IMAGE}{first.question}{medmax.SEPARATOR}{first.answer}"
    # and the copied images are the demo bytes
    assert version.manifest["images"]["count"] == 75
    demo = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (demo_data / "vqa_rad/images").iterdir()}
    assert {p.name.split(".")[0] for p in (folder / "images").iterdir()} == demo


def test_medmax_export_generation_task_puts_image_in_response(project, vqa_rad):
    approve_records(project, vqa_rad[:5], task=medmax.IMAGE_GENERATION)
    _, folder = export(project, tasks=[medmax.IMAGE_GENERATION])
    rows = read_jsonl(folder / "data.jsonl")
    assert len(rows) == 5
    for row in rows:
        prompt, answer = row["text"].split(medmax.SEPARATOR)
        assert medmax.IMAGE not in prompt and answer == medmax.IMAGE
        assert medmax.check_text(row["text"], has_image=True) == []
    _, chat = export(project, tasks=[medmax.IMAGE_GENERATION], format="chat")
    first = read_jsonl(chat / "data.jsonl")[0]
    assert first["messages"][0]["content"][0]["type"] == "text"
    assert first["messages"][1]["content"] == [{"type": "image"}]
    assert (chat / first["images"][0]).is_file()


def test_manifest_lists_counts_hashes_and_versions(project, vqa_rad):
    first = Candidate.objects.filter(project=project).order_by("id").first()
    first.scores = {"grounding": {"value": 0.25, "detail": "3 of 4 terms"}, "length": 1}
    first.save(update_fields=["scores"])
    version, folder = export(project, provenance=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == version.manifest
    assert manifest["rows"] == 150 and manifest["counts"]["task"] == {"vqa": 150}
    assert manifest["counts"]["license"] == {"CC0-1.0": 150}
    assert manifest["templates"] == ["vqa/default@v2 (v2)"]
    assert manifest["models"] == ["SmolLM2-135M-Instruct"]
    assert manifest["app_version"] == "0.1.0"
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    # data, README and ATTRIBUTION, the changelog and its row index, images
    assert len(manifest["files"]) == 1 + 2 + 2 + 75
    row = read_jsonl(folder / "data.jsonl")[0]
    assert row["model"] == "SmolLM2-135M-Instruct" and row["decision"] == "approve"
    assert row["edited"] is False and row["template_version"] == 2
    # the scores' values, read from their JSON column
    assert row["candidate_id"] == first.pk and row["scores"] == {"grounding": 0.25, "length": 1}


def test_versions_are_numbered_per_project(project, vqa_rad):
    other, _ = project_services.project_get_or_create(slug="other")
    first, _ = export(project)
    second, folder = export(project)
    third = services.dataset_version_create(project=other, options={})
    assert (first.number, second.number, third.number) == (1, 2, 1)
    assert folder.name == "v2" and folder.parent.name == project.slug


def test_export_again_is_byte_identical(project, vqa_rad, tmp_path):
    _, a = export(project, tmp_path, split="0.8,0.1,0.1")
    _, b = export(project, tmp_path, split="0.8,0.1,0.1")
    assert a != b
    assert data_files(a) == data_files(b)
    assert len(data_files(a)) == 3 + 2 + 75


def test_round_trip_through_medmax_import_is_byte_identical(project, vqa_rad, tmp_path):
    # given an export of the approved demo set
    _, first = export(project, tmp_path / "one")
    # when it is imported as approved MedMax JSONL into a new project and exported again
    copy, _ = project_services.project_get_or_create(slug="copy")
    report = records_import(project=copy, path=first / "data.jsonl", fmt="medmax", approved=True)
    assert report.errors == [] and report.candidates_created == report.rows
    _, second = export(copy, tmp_path / "two")
    # then the data files and images are byte-identical
    notices = {"README.md", "ATTRIBUTION.md"}
    data = {k: v for k, v in data_files(first).items() if k not in notices}
    assert data == {k: v for k, v in data_files(second).items() if k not in notices}
    assert len(data) == 1 + 75
    # and the notices differ only because MedMax rows carry no licence: the source is still
    # credited, by its known citation
    assert "CC0-1.0" in (first / "ATTRIBUTION.md").read_text()
    assert "no licence recorded" in (second / "ATTRIBUTION.md").read_text()
    assert "Lau JJ" in (second / "ATTRIBUTION.md").read_text()
    assert Candidate.objects.filter(project=copy, status=APPROVED).count() == report.rows


def test_export_loads_with_hugging_face_datasets(project, vqa_rad, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    _, medmax_folder = export(project, tmp_path, split="0.9,0.05,0.05", provenance=True)
    _, chat_folder = export(project, tmp_path, format="chat", split="0.9,0.05,0.05")
    loaded = datasets.load_dataset(
        "json", cache_dir=str(tmp_path / "hf"),
        data_files={s: str(medmax_folder / f"{s}.jsonl") for s in services.SPLITS},
    )
    assert sum(len(loaded[s]) for s in services.SPLITS) == 150
    assert set(loaded["train"].column_names) >= {"text", "image_path", "task", "source", "credential"}
    chat = datasets.load_dataset(
        "json", data_files=str(chat_folder / "train.jsonl"), cache_dir=str(tmp_path / "hf"),
    )["train"]
    assert chat[0]["messages"][0]["content"][0]["type"] == "image"
    assert chat[0]["messages"][1]["role"] == "assistant"
    assert len(chat[0]["images"]) == 1 and (chat_folder / chat[0]["images"][0]).is_file()


def test_chat_export_places_image_part_and_text(project, vqa_rad):
    _, folder = export(project, format="chat")
    rows = read_jsonl(folder / "data.jsonl")
    first = vqa_rad[0]
    assert rows[0]["messages"] == [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": first.question}]},
        {"role": "assistant", "content": [{"type": "text", "text": first.answer}]},
    ]
    assert rows[0]["images"][0].startswith("images/") and (folder / rows[0]["images"][0]).is_file()


def test_splits_never_share_an_image(project, vqa_rad):
    version, folder = export(project, split="0.6,0.2,0.2")
    seen = {}
    for split in services.SPLITS:
        for row in read_jsonl(folder / f"{split}.jsonl"):
            assert seen.setdefault(row["image_path"], split) == split
    counts = version.manifest["counts"]["split"]
    assert sum(counts.values()) == 150 and len(counts) == 3  # all three used at this size
    assert not (folder / "data.jsonl").exists()


def test_credentialed_rows_carry_no_image_path_or_bytes(project, demo_data):
    asset = store_demo_image(demo_data, "vqa_rad/images/synpic35191.jpg")
    record = SourceRecord.objects.create(
        project=project, source="mimic_cxr", external_id="s1", credential="yes", image=asset,
        question="What does the film show?", answer="No acute process.", license="PhysioNet",
    )
    approve_records(project, [record])
    version, folder = export(project)
    (row,) = read_jsonl(folder / "data.jsonl")
    # the MedMax row keeps its placeholder (as MedMax publishes such rows), with a null path
    assert row["image_path"] is None and row["credential"] == "yes"
    assert row["text"].startswith(medmax.IMAGE)
    assert not (folder / "images").exists() or not any((folder / "images").iterdir())
    _, chat = export(project, format="chat")
    (chat_row,) = read_jsonl(chat / "data.jsonl")
    # and the chat row has no image part for an image it does not give (TRL pairs them)
    assert chat_row["images"] == [] and chat_row["credential"] == "yes"
    assert chat_row["messages"][0]["content"] == [{"type": "text", "text": record.question}]


def test_imported_path_string_is_never_used(project, demo_data):
    # given a record whose source data names a traversal path for its image
    asset = store_demo_image(demo_data, "vqa_rad/images/synpic35191.jpg")
    record = SourceRecord.objects.create(
        project=project, source="evil", external_id="x", image=asset,
        question="Is this normal?", answer="Yes", meta={"image_path": "../../etc/passwd"},
    )
    approve_records(project, [record])
    # when exported
    _, folder = export(project)
    (row,) = read_jsonl(folder / "data.jsonl")
    # then the image is found and named by its content hash only
    assert row["image_path"] == f"images/{asset.sha256}.{asset.format}"
    assert (folder / row["image_path"]).read_bytes() == (
        demo_data / "vqa_rad/images/synpic35191.jpg"
    ).read_bytes()
    assert not any("passwd" in p.name for p in folder.rglob("*"))


def test_rows_breaking_medmax_rules_are_left_out_and_listed(project, vqa_rad, settings):
    # given one candidate with an empty response, one too long for the context, and one whose
    # image file has gone
    bad = Candidate.objects.filter(project=project).order_by("id")[0]
    Candidate.objects.filter(pk=bad.pk).update(response="   ")
    long = Candidate.objects.filter(project=project).order_by("id").last()
    Candidate.objects.filter(pk=long.pk).update(response="lesion " * 1500)
    gone = Candidate.objects.filter(project=project).order_by("id")[1]
    asset = gone.record.image
    os.unlink(Path(settings.MEDIA_ROOT) / asset.file)
    sharing = Candidate.objects.filter(record__image=asset).exclude(pk=bad.pk).count()
    # when exported
    version, folder = export(project)
    # then both are left out with their reasons, the rest published
    excluded = version.manifest["excluded"]
    assert excluded["rows"] == 2 + sharing
    listed = {e["candidate_id"]: e["reasons"] for e in excluded["listed"]}
    assert listed[bad.pk] == ["empty response"]
    assert listed[gone.pk] == ["image file missing from the image store"]
    assert listed[long.pk][0].endswith("tokens, over the 2048-token context")
    assert excluded["reasons"]["about N tokens, over the N-token context"] == 1
    rows = read_jsonl(folder / "data.jsonl")
    assert len(rows) == 150 - 2 - sharing
    assert all(medmax.check_text(r["text"], has_image=True) == [] for r in rows)


def test_filters_tasks_sources_licences_and_dates(project, vqa_rad, demo_data):
    # given the four skimage captions approved too (three CC0, one other licence)
    records_import(project=project, path=demo_data / "skimage.jsonl")
    extra = SourceRecord.objects.filter(project=project).exclude(pk__in=[r.pk for r in vqa_rad])
    extra.update(question="What is shown?")
    extra = list(extra.order_by("id"))
    for r in extra:
        r.answer = r.caption
    approve_records(project, extra)
    other = [r for r in extra if r.license != "CC0-1.0"]
    assert len(extra) == 4 and len(other) == 1
    # then each filter keeps what it says
    version, _ = export(project, exclude_licenses=["CC0-1.0"])
    assert version.manifest["rows"] == 1
    assert version.manifest["counts"]["license"] == {other[0].license: 1}
    version, _ = export(project, licenses=["CC0-1.0"])
    assert version.manifest["rows"] == 153
    version, _ = export(project, sources=[vqa_rad[0].source])
    assert version.manifest["counts"]["source"] == {vqa_rad[0].source: 150}
    version, _ = export(project, tasks=[medmax.IMAGE_CAPTIONING])
    assert version.manifest["rows"] == 0
    version, _ = export(project, until="2000-01-01")
    assert version.manifest["rows"] == 0
    version, _ = export(project, since="2000-01-01")
    assert version.manifest["rows"] == 154


def test_min_agreeing_leaves_out_rows_without_enough_reviews(project, vqa_rad):
    version, folder = export(project, min_agreeing=1)
    # system approvals are not reviews
    assert version.manifest["rows"] == 0
    assert version.manifest["excluded"]["reasons"] == {
        "N agreeing reviews, fewer than the N required": 150
    }
    # and no data file is written for a split without rows; the manifest says so
    assert not (folder / "data.jsonl").exists() and version.manifest["empty_splits"] == ["train"]


def test_options_are_checked_with_the_field_named(project):
    for options, field in [
        ({"split": "0.9,0.2,0.1"}, "split"), ({"format": "csv"}, "format"),
        ({"tasks": ["poetry"]}, "tasks"), ({"since": "yesterday"}, "since"),
        ({"min_agreeing": "two"}, "min_agreeing"), ({"colour": "red"}, "colour"),
    ]:
        with pytest.raises(services.ExportOptionsError, match=field):
            services.dataset_version_create(project=project, options=options)
    assert not DatasetVersion.objects.exists()


def test_crash_mid_export_leaves_no_complete_looking_file(project, vqa_rad, monkeypatch):
    # given a writer that fails half way through
    original = files.AtomicFile.write
    written = {}

    def failing(self, line):
        written[self.final] = written.get(self.final, 0) + 1
        if written[self.final] > 75:
            raise OSError("disk full")
        original(self, line)

    monkeypatch.setattr(files.AtomicFile, "write", failing)
    version = services.dataset_version_create(project=project, options={})
    folder = services.dataset_version_folder(version)
    # when built
    version = services.dataset_version_build(version_id=version.pk)
    # then the version failed, saying why, and nothing final-named (or partial) is left
    assert version.status == "failed" and "disk full" in version.error
    assert not folder.exists()
    assert not list(folder.parent.glob("**/*.jsonl")) and not list(folder.parent.glob("**/*.partial"))


def test_partial_file_is_hidden_until_commit(tmp_path):
    handle = files.AtomicFile(tmp_path / "train.jsonl")
    handle.write('{"a":1}\n')
    assert not (tmp_path / "train.jsonl").exists()
    assert (tmp_path / ".train.jsonl.partial").exists()
    digest = handle.commit()
    assert (tmp_path / "train.jsonl").read_bytes() == b'{"a":1}\n'
    assert digest.size == 8 and not (tmp_path / ".train.jsonl.partial").exists()


def test_files_committed_together_are_synced_at_once_each_before_its_rename(tmp_path, monkeypatch):
    # given syncs that take a while, watched for overlap and for the file's final name
    lock, running, seen = threading.Lock(), [0], {"overlap": 0, "renamed_early": []}
    finals = {}
    real_fsync = os.fsync

    def slow_fsync(fd):
        with lock:
            running[0] += 1
            seen["overlap"] = max(seen["overlap"], running[0])
        threading.Event().wait(0.2)
        name = finals[os.readlink(f"/proc/self/fd/{fd}")]
        if name.exists():
            seen["renamed_early"].append(name)
        real_fsync(fd)
        with lock:
            running[0] -= 1

    monkeypatch.setattr(files.os, "fsync", slow_fsync)
    handles = [files.AtomicFile(tmp_path / f"{n}.jsonl") for n in ("train", "val", "test")]
    for handle in handles:
        finals[str(handle.temp)] = handle.final
        handle.write("{}\n")
    # when committed inside one block
    with files.synced_together():
        digests = [handle.commit() for handle in handles]
    # then the syncs overlapped, none was renamed before its sync, all are published at its end
    assert seen["overlap"] == 3 and seen["renamed_early"] == []
    assert all((tmp_path / f"{n}.jsonl").read_bytes() == b"{}\n" for n in ("train", "val", "test"))
    assert [d.size for d in digests] == [3, 3, 3]


def test_a_failed_sync_is_raised_when_the_block_ends(tmp_path, monkeypatch):
    def failing(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "fsync", failing)
    handle = files.AtomicFile(tmp_path / "train.jsonl")
    handle.write("{}\n")
    with pytest.raises(OSError, match="disk gone"), files.synced_together():
        handle.commit()
    assert not (tmp_path / "train.jsonl").exists()


def test_archive_images_is_deterministic(project, vqa_rad, tmp_path):
    import tarfile

    _, a = export(project, tmp_path, images="archive")
    _, b = export(project, tmp_path, images="archive")
    assert (a / "images.tar").read_bytes() == (b / "images.tar").read_bytes()
    with tarfile.open(a / "images.tar") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names) and len(names) == 75
    assert {m.mtime for m in members} == {0}
    rows = read_jsonl(a / "data.jsonl")
    assert set(names) == {r["image_path"] for r in rows}
    assert not (a / "images").exists()


def test_build_runs_once(project, vqa_rad):
    version, folder = export(project)
    before = data_files(folder)
    again = services.dataset_version_build(version_id=version.pk)
    assert again.status == "done" and data_files(folder) == before


def test_split_of_is_stable_and_follows_proportions():
    keys = [f"{i:064x}" for i in range(4000)]
    splits = [services.split_of(k, [0.9, 0.05, 0.05]) for k in keys]
    assert splits == [services.split_of(k, [0.9, 0.05, 0.05]) for k in keys]
    assert 3400 < splits.count("train") < 3800
    assert {services.split_of(k, [0, 1, 0]) for k in keys} == {"validation"}


def _decide(candidate, user, action, **extra):
    return Decision.objects.create(
        candidate=candidate, reviewer=user, action=action, candidate_version=1, **extra
    )


def test_agreement_and_min_agreeing_count_effective_human_verdicts(
    project, vqa_rad, reviewer, reviewer2, adjudicator
):
    # given: c1 approved by two reviewers; c2 approved by one, rejected by another, then
    # adjudicated; c3 approved by one whose approval was undone and redone by another
    c1, c2, c3 = Candidate.objects.filter(project=project).order_by("id")[:3]
    _decide(c1, reviewer, APPROVE)
    _decide(c1, reviewer2, EDIT)
    _decide(c2, reviewer, APPROVE)
    _decide(c2, reviewer2, REJECT, reason="hallucination")
    _decide(c2, adjudicator, ADJUDICATE)
    undone = _decide(c3, reviewer, APPROVE)
    _decide(c3, reviewer, UNDO, undoes=undone)
    _decide(c3, reviewer2, APPROVE)
    Candidate.objects.filter(pk=c1.pk).update(edited=True)
    # when exported with at least two agreeing reviews and provenance
    version, folder = export(project, min_agreeing=2, provenance=True)
    # then c1 and c2 are published (c3 has one effective verdict), with their reviewers
    rows = read_jsonl(folder / "data.jsonl")
    assert [r["candidate_id"] for r in rows] == [c1.pk, c2.pk]
    assert rows[0]["reviewers"] == [reviewer.username, reviewer2.username]
    assert rows[0]["edited"] is True and rows[0]["decision"] == "edit"
    assert rows[1]["decision"] == "adjudicate"
    # The adjudication settles c2 (one agreeing review toward min_agreeing) but is not a
    # verdict of its own in the agreement figures (review.selectors.verdicts_standing).
    assert version.manifest["agreement"] == {
        "reviews": 4, "candidates_reviewed": 2, "candidates_with_several_reviews": 2,
        "unanimous": 1, "unanimous_share": 0.5,
    }
    assert version.manifest["excluded"]["rows"] == 148


@pytest.mark.django_db(transaction=True)
def test_dataset_version_create_numbers_concurrent_exports_apart(project):
    import threading

    from django.db import connection

    numbers, errors = [], []

    def create():
        try:
            numbers.append(services.dataset_version_create(project=project, options={}).number)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(numbers) == [1, 2, 3, 4]


def test_images_none_names_paths_without_copying(project, vqa_rad):
    version, folder = export(project, images="none")
    rows = read_jsonl(folder / "data.jsonl")
    assert all(r["image_path"].startswith("images/") for r in rows)
    assert not (folder / "images").exists() and not (folder / "images.tar").exists()
    assert version.manifest["images"] == {"mode": "none", "count": 0, "embedded": 0}
    assert set(version.manifest["files"]) == {
        "data.jsonl", "README.md", "ATTRIBUTION.md", "CHANGELOG.md", "rows.tsv"}


def test_store_path_leaving_media_root_is_refused(project, demo_data):
    # given an asset row whose stored file path was tampered with to point outside the store
    asset = store_demo_image(demo_data, "vqa_rad/images/synpic35191.jpg")
    asset.file = "../../../../etc/hostname"
    asset.save(update_fields=["file"])
    record = SourceRecord.objects.create(
        project=project, source="s", external_id="1", image=asset, question="Q?", answer="A",
    )
    (candidate,) = approve_records(project, [record])
    version, folder = export(project)
    assert version.manifest["excluded"]["listed"] == [{
        "candidate_id": candidate.pk, "record_id": record.pk,
        "reasons": ["image file lies outside the image store"],
    }]
    assert not (folder / "data.jsonl").exists()


def test_store_file_changed_after_import_is_left_out_where_its_bytes_ship(
        project, vqa_rad, settings, monkeypatch):
    # given one stored image whose file no longer holds the bytes its hash names
    candidate = Candidate.objects.filter(project=project).order_by("id")[3]
    asset = candidate.record.image
    (Path(settings.MEDIA_ROOT) / asset.file).write_bytes(b"not the image it was")
    sharing = Candidate.objects.filter(record__image=asset).count()
    threads = []
    checked = files.image_verify

    def verify(**kwargs):
        threads.append(threading.current_thread().name)
        return checked(**kwargs)

    monkeypatch.setattr(files, "image_verify", verify)
    # when exported with images copied
    version, folder = export(project)
    # then its rows are left out with the reason, and every other image was checked once,
    # off the exporting thread, while the rows before it were written
    listed = {e["candidate_id"]: e["reasons"] for e in version.manifest["excluded"]["listed"]}
    assert listed[candidate.pk] == ["image file does not match its content hash"]
    assert version.manifest["excluded"]["rows"] == sharing
    assert version.manifest["images"]["count"] == 74
    assert not (folder / "images" / f"{asset.sha256}.{asset.format}").exists()
    assert len(threads) == 75 and set(threads) == {"read-ahead"}
    # and with images "none" the rows are published: no bytes ship, the file need only be there
    version, folder = export(project, images="none")
    assert version.manifest["excluded"]["rows"] == 0
    assert len(read_jsonl(folder / "data.jsonl")) == 150


def test_version_files_listed_names_data_files_and_counts_images(project, vqa_rad):
    # given a version with a split and copied images
    version, _ = export(project, split="0.9,0.05,0.05")
    # when its files are listed for the page
    files, images = services.version_files_listed(version)
    # then each data file comes with its manifest entry, the manifest last without one
    assert [name for name, _ in files] == [
        "ATTRIBUTION.md", "CHANGELOG.md", "README.md", "rows.tsv", "test.jsonl", "train.jsonl",
        "validation.jsonl", "manifest.json",
    ]
    assert all(entry == version.manifest["files"][name] for name, entry in files[:-1])
    assert files[-1][1] is None
    # and the images are only counted
    assert images == version.manifest["images"]["count"] == 75
