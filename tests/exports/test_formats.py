"""Every export format, built from the real VQA-RAD and SLAKE demo rows mixed with rows that have
no image file, checked against the rules the trainers that read them document."""

import hashlib
import json
import re
from pathlib import Path

import pytest

from medmax_review.core import medmax
from medmax_review.exports import build, services
from medmax_review.exports.writers import FORMATS, parquet
from medmax_review.review.models import Candidate
from tests.exports.conftest import data_files, export, read_jsonl

pytestmark = pytest.mark.django_db

SPLIT = "0.5,0.25,0.25"


def load(folder: Path, tmp_path: Path, monkeypatch):
    """`load_dataset(folder)`, offline, as a user of the export would call it."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))


def split_rows(folder: Path, fmt: str) -> dict[str, list[dict]]:
    """The rows of each split file of a JSON export, read with the json module alone."""
    suffix = FORMATS[fmt].suffix
    out = {}
    for split in (*build.SPLITS, build.SINGLE_FILE):
        path = folder / f"{split}{suffix}"
        if path.exists():
            out[split] = json.loads(path.read_text()) if suffix == ".json" else read_jsonl(path)
    return out


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_loads_with_datasets_split_by_split(
    fmt, project, mixed, tmp_path, monkeypatch
):
    # given a project mixing image rows, credentialed rows and text-only rows
    # when it is exported with three splits
    version, folder = export(project, tmp_path, format=fmt, split=SPLIT)
    manifest = version.manifest
    # then load_dataset(folder) reads the intended data files (the card's configs), not an
    # imagefolder of images/, and gives every published row in its split
    loaded = load(folder, tmp_path, monkeypatch)
    counts = manifest["counts"]["split"]
    assert set(loaded) == set(counts) == set(build.SPLITS)
    assert {name: len(loaded[name]) for name in loaded} == counts
    left_out = 4 if fmt == "llava" else 0  # LLaVA cannot take an image in the response
    assert manifest["rows"] == mixed["rows"] - left_out
    columns = set(loaded["train"].column_names)
    assert {"task", "source", "credential"} <= columns and "label" not in columns
    # and every format carries its notices, listed with their hashes
    for name in ("README.md", "ATTRIBUTION.md"):
        entry = manifest["files"][name]
        assert entry["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()


def test_parquet_export_decodes_images_and_leaves_them_out_where_there_are_none(
    project, mixed, tmp_path, monkeypatch, demo_data
):
    import PIL.Image

    # given the mixed project exported as Parquet
    version, folder = export(project, tmp_path, format="parquet", split=SPLIT)
    # then the files follow the Hub's layout, one shard per split at this size
    names = sorted(p.relative_to(folder).as_posix() for p in (folder / "data").iterdir())
    assert names == [f"data/{s}-00000-of-00001.parquet" for s in ("test", "train", "validation")]
    assert not (folder / "images").exists() and version.manifest["images"]["count"] == 0
    # and load_dataset decodes the image column as images, None on rows without an image file
    rows = [row for split in load(folder, tmp_path, monkeypatch).values() for row in split]
    assert version.manifest["images"]["embedded"] == sum(r["image"] is not None for r in rows)
    by_source = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row["image"])
    assert all(isinstance(i, PIL.Image.Image) for i in by_source["vqa_rad"] + by_source["slake"])
    assert by_source["mimic_cxr"] == [None] * 3 and by_source["ward_reports"] == [None] * 3
    # and the bytes are the demo file's own
    first = mixed["vqa_rad"][0]
    image = next(r["image"] for r in rows if r["text"].startswith(f"{medmax.IMAGE}{first.question}"))
    stored = PIL.Image.open(demo_data / "vqa_rad/images" / first.meta["image_name"])
    assert image.size == stored.size and image.tobytes() == stored.tobytes()


def test_parquet_export_shards_by_size_in_row_groups(project, mixed, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    # given shards limited to about 1 MB and row groups to 4 rows
    monkeypatch.setattr(parquet, "SHARD_BYTES", 1 << 20)
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 4)
    # when exported without a split
    version, folder = export(project, tmp_path, format="parquet")
    # then the one split is sharded, the shards named with their count, each made of row
    # groups, and the card's configs list them all under "train"
    shards = sorted((folder / "data").iterdir())
    count = len(shards)
    assert count > 1
    assert [p.name for p in shards] == [
        f"train-{i:05d}-of-{count:05d}.parquet" for i in range(count)
    ]
    groups = [pq.ParquetFile(p).metadata.num_row_groups for p in shards]
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in shards) == version.manifest["rows"]
    assert max(groups) > 1
    schema = pq.read_schema(shards[0])
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features["image"] == {"_type": "Image"}
    assert schema.field("image").type.names == ["bytes", "path"]
    card = (folder / "README.md").read_text()
    assert all(f'- "data/{p.name}"' in card for p in shards)


def test_parquet_provenance_columns_load_typed(project, vqa_rad, tmp_path, monkeypatch):
    # given a Parquet export with the provenance columns
    _, folder = export(project, tmp_path, format="parquet", provenance=True)
    train = load(folder, tmp_path, monkeypatch)["train"]
    # then they load with their types: a list of reviewers, the scores as one JSON text
    features = train.features
    assert features["candidate_id"].dtype == "int64" and features["edited"].dtype == "bool"
    assert features["reviewers"].feature.dtype == "string"
    row = train[0]
    assert row["decision"] == "approve" and row["reviewers"] == []
    assert json.loads(row["scores"]) == {}


def test_parquet_refuses_an_images_archive(project):
    with pytest.raises(services.ExportOptionsError, match="^images: parquet") as caught:
        services.dataset_version_create(project=project, options={"format": "parquet",
                                                                  "images": "archive"})
    assert caught.value.field == "images"


def test_chat_export_gives_image_parts_only_for_the_images_it_lists(project, mixed, tmp_path):
    # given the mixed project exported in TRL's chat format
    _, folder = export(project, tmp_path, format="chat")
    rows = read_jsonl(folder / "data.jsonl")
    # then each row has exactly as many image parts as images, and the images exist
    for row in rows:
        parts = [p for m in row["messages"] for p in m["content"] if p["type"] == "image"]
        assert len(parts) == len(row["images"]), row
        assert all((folder / path).is_file() for path in row["images"])
    by_source = {r["source"]: r for r in rows}
    # and rows without an image file (credentialed, text-only) carry none at all
    for source in ("mimic_cxr", "ward_reports"):
        assert by_source[source]["images"] == []
        assert [p["type"] for m in by_source[source]["messages"] for p in m["content"]] == [
            "text", "text"
        ]


def test_sharegpt_export_follows_llama_factory_rules(project, mixed, tmp_path):
    # given the mixed project exported as sharegpt with three splits
    _, folder = export(project, tmp_path, format="sharegpt", split=SPLIT)
    info = json.loads((folder / "dataset_info.json").read_text())
    # then dataset_info.json describes each split file as LLaMA-Factory's data/README.md asks
    # of a multimodal sharegpt dataset with OpenAI-style tags (its "mllm_demo" entry):
    # formatting "sharegpt", columns messages/images, tags role/content/user/assistant
    assert sorted(info) == [f"medmax_review_{s}" for s in ("test", "train", "validation")]
    for name, entry in info.items():
        assert entry == {
            "file_name": f"{name.removeprefix('medmax_review_')}.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant"},
        }
        rows = read_jsonl(folder / entry["file_name"])
        for row in rows:
            roles = [m["role"] for m in row["messages"]]
            # "the human and observation should appear in odd positions, while gpt and
            # function should appear in even positions" (user/assistant here), in pairs
            assert roles == ["user", "assistant"]
            assert all(isinstance(m["content"], str) and m["content"] for m in row["messages"]
                       if not (m["role"] == "assistant" and row["task"] == "image_generation"))
            # "The number of images should be identical to the <image> tokens in the
            # conversations"; paths are relative to the dataset dir (media_dir's default)
            tokens = sum(m["content"].count("<image>") for m in row["messages"])
            assert tokens == len(row["images"])
            assert all((folder / path).is_file() for path in row["images"])
    rows = [r for split in split_rows(folder, "sharegpt").values() for r in split]
    assert {r["source"] for r in rows if not r["images"]} == {"mimic_cxr", "ward_reports"}
    assert all(r["messages"][0]["content"].startswith("<image>") for r in rows
               if r["images"] and r["task"] == "vqa")


def test_llava_export_follows_llava_rules(project, mixed, tmp_path):
    # given the mixed project exported as LLaVA JSON with three splits
    version, folder = export(project, tmp_path, format="llava", split=SPLIT)
    splits = split_rows(folder, "llava")
    assert set(splits) == set(build.SPLITS)
    ids = set()
    for items in splits.values():
        for item in items:
            # LLaVA's docs/Finetune_Custom_Data.md: "a JSON file of a List of all samples",
            # each with `id` (unique), `image` and `conversations`; llava/train/train.py tests
            # `'image' in sample`, so a row without an image has no such key at all
            assert item["id"] not in ids
            ids.add(item["id"])
            turns = item["conversations"]
            # train.py maps roles {"human", "gpt"} and asserts they alternate from the human
            assert [t["from"] for t in turns] == ["human", "gpt"]
            text = "".join(t["value"] for t in turns)
            if "image" in item:
                assert (folder / item["image"]).is_file()
                # preprocess_multimodal puts DEFAULT_IMAGE_TOKEN + "\n" first; written so
                assert turns[0]["value"].startswith("<image>\n") and text.count("<image>") == 1
            else:
                assert "<image>" not in text
    rows = [item for items in splits.values() for item in items]
    assert {r["source"] for r in rows if "image" not in r} == {"mimic_cxr", "ward_reports"}
    # and the four image-generation rows are left out, counted in the manifest
    excluded = version.manifest["excluded"]
    assert excluded["reasons"] == {
        "image in the response: LLaVA's format takes images as input only": 4
    }
    assert {r["candidate_id"] for r in excluded["listed"]} == set(
        Candidate.objects.filter(task=medmax.IMAGE_GENERATION).values_list("id", flat=True)
    )
    assert not {r["candidate_id"] for r in excluded["listed"]} & {int(i) for i in ids}


def test_llava_array_is_written_item_by_item(project, mixed, tmp_path, monkeypatch):
    # given a recorder of each write into the LLaVA file
    from medmax_review.exports import files

    sizes = []
    original = files.AtomicFile.write

    def recording(self, data):
        if self.final.name == "data.json":
            sizes.append(len(data))
        return original(self, data)

    monkeypatch.setattr(files.AtomicFile, "write", recording)
    version, folder = export(project, tmp_path, format="llava")
    # then the array went out as "[", one item at a time with its comma, and "]": never whole
    rows = version.manifest["rows"]
    assert len(sizes) == 1 + rows + (rows - 1) + 1
    assert max(sizes) < (folder / "data.json").stat().st_size / 10


def test_medmax_rows_without_an_image_say_null(project, mixed, tmp_path):
    _, folder = export(project, tmp_path)
    rows = read_jsonl(folder / "data.jsonl")
    by_source = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    assert [r["image_path"] for r in by_source["mimic_cxr"]] == [None] * 3
    assert [r["image_path"] for r in by_source["ward_reports"]] == [None] * 3
    # the credentialed rows keep their placeholder, as MedMax publishes them; text-only do not
    assert all(r["text"].startswith(medmax.IMAGE) for r in by_source["mimic_cxr"])
    assert not any(medmax.IMAGE in r["text"] for r in by_source["ward_reports"])
    assert all(r["image_path"].startswith("images/") for r in by_source["vqa_rad"])


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_gives_no_file_for_an_empty_split(fmt, project, mixed, tmp_path):
    # given a split that sends every row to train
    version, folder = export(project, tmp_path, format=fmt, split="1,0,0")
    # then only train has a file; the manifest and the card say the others are empty
    assert version.manifest["empty_splits"] == ["validation", "test"]
    written = {name for name in version.manifest["files"] if not name.startswith("images/")}
    assert not any(re.search(r"(validation|test)", name) for name in written)
    card = (folder / "README.md").read_text()
    assert '- split: "train"' in card and '- split: "test"' not in card
    assert "Splits without rows have no file: validation, test." in card


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_is_byte_identical_when_built_again(fmt, project, mixed, tmp_path):
    _, first = export(project, tmp_path, format=fmt, split=SPLIT, provenance=True)
    _, second = export(project, tmp_path, format=fmt, split=SPLIT, provenance=True)
    assert first != second
    assert data_files(first) == data_files(second)


def test_attribution_lists_each_source_licence_and_credit(project, mixed, tmp_path):
    # given the mixed project exported
    _, folder = export(project, tmp_path, format="chat")
    notice = (folder / "ATTRIBUTION.md").read_text()
    sections = dict(re.findall(r"^## (\S+) .*?\n\n(.*?)(?=^## |\Z)", notice, re.S | re.M))
    # then each source is credited: the known ones by their paper, CC BY saying attribution
    # is required, a source we know nothing of with the generic line
    assert set(sections) == {"vqa_rad", "slake", "mimic_cxr", "ward_reports"}
    assert "## vqa_rad (CC0-1.0), 28 rows" in notice  # 24 questions, 4 image generation
    assert "Lau JJ" in sections["vqa_rad"] and "Sci Data 5, 180251 (2018)" in sections["vqa_rad"]
    assert "no attribution is required" in sections["vqa_rad"]
    assert "## slake (CC-BY-4.0), 24 rows" in notice
    assert "Liu B" in sections["slake"] and "ISBI 2021" in sections["slake"]
    assert "CC-BY-4.0: attribution is required" in sections["slake"]
    assert "No citation is on record" in sections["ward_reports"]
    assert "CC-BY-NC-4.0: attribution is required" in sections["ward_reports"]
    assert "PhysioNet" in sections["mimic_cxr"]
    # and the card names the licences by the Hub's ids
    card = (folder / "README.md").read_text()
    front = card.split("---")[1]
    assert "license:\n- cc-by-4.0\n- cc-by-nc-4.0\n- cc0-1.0\n- other\n" in front


def test_version_leftovers_remove_knows_every_format_file(tmp_path):
    # given a folder holding what an interrupted build of any format may leave
    tmp_path = tmp_path / "v1"
    tmp_path.mkdir()
    names = ["data.jsonl", "train.json", "test.jsonl", "README.md", "ATTRIBUTION.md",
             "dataset_info.json", "manifest.json", ".validation.json.partial"]
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / ".train-00000.parquet.partial").write_text("x")
    (tmp_path / "notes.txt").write_text("not ours")
    # when cleaned, then every one is gone but the file no build writes
    removed = services.version_leftovers_remove(folder=tmp_path)
    assert sorted(removed) == sorted([*names, "data"])
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_task_names_source_writes_each_imported_spelling(project, tmp_path, demo_data):
    from django.core.management import call_command

    # given a MedMax file naming its tasks its own way, imported as approved
    images = tmp_path / "published" / "images"
    images.mkdir(parents=True)
    (images / "a.jpg").write_bytes((demo_data / "vqa_rad/images/synpic35191.jpg").read_bytes())
    rows = [
        {"text": "<image>Is this normal?<reserved08706>Yes", "image_path": "images/a.jpg",
         "task": "VQA", "source": "vqa_rad", "credential": "no"},
        {"text": "Draw a head MRI.<reserved08706><image>", "image_path": "images/a.jpg",
         "task": "Image Generation", "source": "vqa_rad", "credential": "no"},
    ]
    path = tmp_path / "published" / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    call_command("import_records", str(path), "--project", project.slug, "--format", "medmax",
                 "--approved")
    # when exported with task_names "source", and with the default
    _, source = export(project, tmp_path, task_names="source")
    _, canonical = export(project, tmp_path)
    # then the first gives the file's spellings, the second the canonical names
    assert [r["task"] for r in read_jsonl(source / "data.jsonl")] == ["VQA", "Image Generation"]
    assert [r["task"] for r in read_jsonl(canonical / "data.jsonl")] == [
        "vqa", "image_generation"
    ]


def test_task_names_source_falls_back_to_the_canonical_name(project, vqa_rad, tmp_path):
    # given candidates made here (no imported spelling)
    _, folder = export(project, tmp_path, task_names="source", format="sharegpt")
    assert {r["task"] for r in read_jsonl(folder / "data.jsonl")} == {"vqa"}


def test_options_name_the_bad_field(project):
    for options, field in [
        ({"task_names": "fancy"}, "task_names"), ({"format": "yaml"}, "format"),
        ({"images": "inline"}, "images"),
    ]:
        with pytest.raises(services.ExportOptionsError) as caught:
            services.dataset_version_create(project=project, options=options)
        assert caught.value.field == field and str(caught.value).startswith(f"{field}: ")
    assert set(services.FORMATS) == {"medmax", "chat", "sharegpt", "llava", "parquet"}


def test_task_names_source_writes_back_the_image_path_the_import_kept(project, mixed, tmp_path):
    # given credentialed rows, one of which the import recorded as published with a null path
    kept = Candidate.objects.filter(record=mixed["credentialed"][0]).get()
    kept.provenance = {**kept.provenance, "image_path": None}
    kept.save(update_fields=["provenance"])
    # when exported as their source had them, and by default
    _, source = export(project, tmp_path, task_names="source", tasks=["report_understanding"])
    _, default = export(project, tmp_path, tasks=["report_understanding"])
    # then the kept null comes back, the other credentialed rows get MedMax's "", and the
    # text-only rows (no image, not credentialed) stay null; by default every one is null
    paths = [(r["source"], r["image_path"]) for r in read_jsonl(source / "data.jsonl")]
    assert paths == [("mimic_cxr", None), ("mimic_cxr", ""), ("mimic_cxr", "")] + [
        ("ward_reports", None)
    ] * 3
    assert {r["image_path"] for r in read_jsonl(default / "data.jsonl")} == {None}
