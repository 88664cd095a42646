import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image


def png_bytes(size=(8, 8), color=0, mode="L") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


def write_jsonl(path: Path, rows) -> Path:
    """rows: dicts (dumped as JSON) or raw strings (written as they are)."""
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "data"
    (folder / "img").mkdir(parents=True)
    for i in range(3):
        (folder / "img" / f"{i}.png").write_bytes(png_bytes(color=i * 40))
    return folder


def demo_row(i: int, **extra) -> dict:
    return {
        "id": f"r{i}",
        "image": f"img/{i % 3}.png",
        "question": f"Question {i}?",
        "answer": "yes",
        "source": "test_set",
        "license": "CC0-1.0",
        "meta": {"n": i},
        **extra,
    }


def zip_bundle_bytes() -> bytes:
    """A ZIP of rows.jsonl (two good rows, one line of bad JSON) and its three images."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("rows.jsonl", "\n".join(json.dumps(demo_row(i)) for i in range(2)) + "\n{bad json\n")
        for i in range(3):
            zf.writestr(f"img/{i}.png", png_bytes(color=i + 5))
    return out.getvalue()


