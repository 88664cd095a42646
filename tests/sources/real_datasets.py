"""Files in the field's own layouts, built from the real VQA-RAD, SLAKE and scikit-image records
bundled in demo_data/ (their text verbatim, their images byte for byte).

Each builder writes into a folder and returns the path to import plus what a user expects.
"""

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

from tests.conftest import DEMO_DATA


def rows(name: str) -> list[dict]:
    with open(DEMO_DATA / f"{name}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _copy(image: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEMO_DATA / image, target)


def slake_original(folder: Path, *, pretty: bool = True) -> tuple[Path, list[dict]]:
    """SLAKE 1.0's own split file (a JSON array), its images under imgs/xmlabN/source.jpg."""
    items = []
    for row in rows("slake"):
        meta = row["meta"]
        items.append({
            "img_id": meta["img_id"], "img_name": meta["img_name"], "question": row["question"],
            "answer": row["answer"], "q_lang": meta["q_lang"], "location": meta["location"],
            "modality": meta["modality"], "answer_type": meta["answer_type"],
            "base_type": meta["base_type"], "content_type": meta["content_type"],
            "triple": meta["triple"], "qid": meta["qid"],
        })
        _copy(row["image"], folder / "imgs" / meta["img_name"])
    path = folder / "train.json"
    path.write_text(json.dumps(items, ensure_ascii=False, indent=4 if pretty else None),
                    encoding="utf-8")
    return path, items


def vqa_rad_original(folder: Path) -> tuple[Path, list[dict]]:
    """VQA-RAD's "VQA_RAD Dataset Public.json": one line, answers sometimes JSON numbers,
    images in "VQA_RAD Image Folder/"."""
    items = []
    for row in rows("vqa_rad"):
        meta = dict(row["meta"])
        answer = int(row["answer"]) if meta.pop("answer_raw_type", None) == "int" else row["answer"]
        items.append({**meta, "question": row["question"], "answer": answer})
        _copy(row["image"], folder / "VQA_RAD Image Folder" / meta["image_name"])
    path = folder / "VQA_RAD Dataset Public.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path, items


def llava_conversations(folder: Path, *, jsonl: bool = False) -> tuple[Path, dict]:
    """LLaVA-Med style items: one per VQA-RAD image, its question pairs as turns."""
    by_image = defaultdict(list)
    for row in rows("vqa_rad"):
        by_image[row["image"]].append(row)
    items = []
    for i, (image, qas) in enumerate(sorted(by_image.items())):
        name = Path(image).name
        _copy(image, folder / "images" / name)
        turns = []
        for k, qa in enumerate(qas):
            question = f"<image>\n{qa['question']}" if k == 0 else qa["question"]
            turns += [{"from": "human", "value": question}, {"from": "gpt", "value": qa["answer"]}]
        # The image as LLaVA writes it (a string) and as PubMedVision does (a one-element list).
        items.append({"id": f"llava-{i}", "image": name if i % 2 else [name],
                      "conversations": turns})
    path = folder / ("llava.jsonl" if jsonl else "llava_med.json")
    if jsonl:
        path.write_text("".join(json.dumps(x) + "\n" for x in items), encoding="utf-8")
    else:
        path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    expected = {"records": len(items), "candidates": sum(len(x["conversations"]) // 2 for x in items)}
    return path, expected


def parquet_dataset(folder: Path, *, shards: int = 2) -> tuple[Path, int]:
    """A Hugging Face dataset as `datasets` writes it: data/train-0000K-of-0000N.parquet with
    an Image feature holding the bytes (the layout of flaviagiammarino/vqa-rad on the Hub)."""
    import datasets

    source = rows("vqa_rad")
    features = datasets.Features({
        "image": datasets.Image(), "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
    })
    data = datasets.Dataset.from_dict(
        # Bytes embedded, as on the Hub (to_parquet alone would keep only local paths).
        {"image": [{"bytes": (DEMO_DATA / r["image"]).read_bytes(), "path": Path(r["image"]).name}
                   for r in source],
         "question": [r["question"] for r in source], "answer": [r["answer"] for r in source]},
        features=features,
    )
    out = folder / "data"
    out.mkdir(parents=True)
    for k in range(shards):
        data.shard(num_shards=shards, index=k, contiguous=True).to_parquet(
            str(out / f"train-{k:05d}-of-{shards:05d}.parquet"))
    return folder, len(source)


def spreadsheet_csv(folder: Path) -> tuple[Path, int]:
    """SLAKE rows as a spreadsheet saves them: `;`-separated, a BOM, CRLF, its own headers."""
    source = rows("slake")
    path = folder / "slake_sheet.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(["Picture", "Question", "Answer", "Language", "Organ"])
        for row in source:
            writer.writerow([row["image"], row["question"], row["answer"], row["lang"],
                             row["meta"]["location"]])
    return path, len(source)


MEDMAX_TASK_SPELLINGS = ("VQA", "Visual Question Answering", "vqa", "Visual-Chat",
                         "visual_chat", "Visual Chat")


def medmax_rows(folder: Path) -> tuple[Path, list[dict]]:
    """MedMax rows as its train.jsonl spells tasks ("VQA", "Image Captioning", ...)."""
    out = []
    for i, row in enumerate(rows("vqa_rad")[:24]):
        task = MEDMAX_TASK_SPELLINGS[i % len(MEDMAX_TASK_SPELLINGS)]
        out.append({"text": f"<image>{row['question']}<reserved08706>{row['answer']}",
                    "image_path": row["image"], "task": task, "source": "vqa_rad",
                    "credential": "no"})
    for row in rows("skimage"):
        out.append({"text": f"<image>Describe the image.<reserved08706>{row['caption'][:400]}",
                    "image_path": row["image"], "task": "Image Captioning", "source": "skimage",
                    "credential": "no"})
        out.append({"text": f"Generate this image: {row['caption'][:200]}<reserved08706><image>",
                    "image_path": row["image"], "task": "Image Generation",
                    "source": "skimage", "credential": "no"})
    out.append({"text": "Summarise the report.<reserved08706>No acute findings.",
                "image_path": "", "task": "Report Understanding", "source": "mimic_cxr",
                "credential": "yes"})
    for row in out:
        if row["image_path"]:
            _copy(row["image_path"], folder / row["image_path"])
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return path, out


def reports_folder(folder: Path) -> tuple[Path, int]:
    """MIMIC-CXR's layout: files/pNN/pNNNNNNNN/sNNNNNNNN.txt beside the study folder of its
    DICOM files, plus a report paired by file name. The DICOM files are pydicom's own."""
    root = folder / "files"
    studies = [("p10/p10000032/s50414267", "CT_small.dcm"),
               ("p10/p10000032/s53189527", "MR_small.dcm")]
    for study, dcm in studies:
        (root / study).mkdir(parents=True)
        shutil.copyfile(DEMO_DATA / "dicom" / dcm, root / study / f"{dcm.lower()}")
        (root / f"{study}.txt").write_text(
            "                                 FINAL REPORT\n"
            f" EXAMINATION:  {dcm.split('_')[0]} study.\n\n"
            " FINDINGS:  The imaged structures are within normal limits.\n\n"
            " IMPRESSION:  No acute abnormality.\n", encoding="utf-8")
    shutil.copyfile(DEMO_DATA / "skimage" / "images" / "retina.jpg", root / "fundus1.jpg")
    (root / "fundus1.txt").write_text("FINDINGS: Normal optic disc and macula.\n", encoding="utf-8")
    return root, 3
