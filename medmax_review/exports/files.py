"""Streaming writers for the export formats: one row in, one line out, nothing held in memory.

Output must be byte-stable: keys in a fixed order, compact separators, UTF-8 kept as is, "\\n"
line ends, and nothing that depends on when or where the export ran.
"""

import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from medmax_review.core.medmax import IMAGE, SEPARATOR

PARTIAL_SUFFIX = ".partial"


@dataclass
class ExportLine:
    """What a writer needs for one row; built by the service from the DB and validated first."""

    text: str  # the MedMax `text`: prompt, separator, response, <image> in place
    image_path: str  # "images/<sha256>.<ext>", or "" for credentialed rows and rows without image
    task: str
    source: str
    credential: str  # "yes" / "no"
    provenance: dict | None = None  # fixed-order extra columns, only with the provenance flag


def _dumps(obj: dict, row: ExportLine) -> str:
    """Close a row with the columns every format shares, then one compact JSON line."""
    obj.update(task=row.task, source=row.source, credential=row.credential)
    if row.provenance is not None:
        obj.update(row.provenance)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def medmax_line(row: ExportLine) -> str:
    """A MedMax row: text, image_path, task, source, credential (no `tokens`: no tokenizer here).

    Credentialed rows keep the `image_path` key with an empty value, as the published MedMax
    rows for credentialed sources do, so every row has the same columns.
    """
    return _dumps({"text": row.text, "image_path": row.image_path}, row)


def _parts(segment: str) -> list[dict]:
    """Text and image parts of one turn, the image where the <image> placeholder stood."""
    parts: list[dict] = []
    pieces = segment.split(IMAGE)
    for i, piece in enumerate(pieces):
        if i:
            parts.append({"type": "image"})
        if piece.strip():
            parts.append({"type": "text", "text": piece.strip()})
    return parts


def chat_line(row: ExportLine) -> str:
    """A chat row: user/assistant messages with image parts and an `images` list.

    Credentialed rows keep their `{"type": "image"}` part but list no image: the trainer
    supplies it from its own licensed copy (the row says credential "yes").
    """
    prompt, answer = row.text.split(SEPARATOR, 1)
    obj = {
        "messages": [
            {"role": "user", "content": _parts(prompt)},
            {"role": "assistant", "content": _parts(answer)},
        ],
        "images": [row.image_path] if row.image_path else [],
    }
    return _dumps(obj, row)


FORMATS: dict[str, Callable[[ExportLine], str]] = {"medmax": medmax_line, "chat": chat_line}


class Abandoned(Exception):  # noqa: N818 - a signal, not an error
    """The writer lost its claim on the output: its temporary files may already be another
    writer's, so they are left where they are."""


def partial_name(final: Path) -> Path:
    """Where a file is written until complete: hidden and clearly unfinished."""
    return final.with_name(f".{final.name}{PARTIAL_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class FileDigest:
    sha256: str
    size: int


@dataclass
class AtomicLineFile:
    """A JSONL file written under a temporary name, hashed on the fly, renamed when complete."""

    final: Path
    digest: object = field(default_factory=hashlib.sha256)
    size: int = 0
    lines: int = 0

    def __post_init__(self):
        self.temp = partial_name(self.final)
        self._fh = open(self.temp, "wb")  # noqa: SIM115 - closed by commit() or abort()

    def write(self, line: str) -> None:
        data = line.encode("utf-8")
        self._fh.write(data)
        self.digest.update(data)
        self.size += len(data)
        self.lines += 1

    def commit(self) -> FileDigest:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.temp, self.final)
        return FileDigest(self.digest.hexdigest(), self.size)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def abort(self) -> None:
        self.close()
        self.temp.unlink(missing_ok=True)


def hash_file(path: Path) -> FileDigest:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return FileDigest(digest.hexdigest(), size)


def place_image(*, source: Path, target: Path, sha256: str) -> str:
    """Put one stored image at `target` (hard link, else copy), checked against its hash.

    Returns "" when the image is in place, else the reason it could not be.
    """
    if target.exists():
        return ""
    if not source.is_file():
        return "image file missing from the image store"
    if hash_file(source).sha256 != sha256:
        return "image file does not match its content hash"
    temp = partial_name(target)
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)
    return ""


def tar_stream(
    *, members: list[tuple[str, Path]], chunk_size: int = 1 << 20,
    progress: Callable[[], None] | None = None,
):
    """Yield a tar of `members` ((name in the archive, file), in the given order) in pieces,
    calling `progress` after each member.

    Deterministic (members in the given order, no owner, fixed mode and mtime) and streamed:
    headers and file bytes are written by hand so no member is ever held whole in memory.
    """
    total = 0
    for name, path in members:
        size = path.stat().st_size
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, 0, 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
        yield header
        with open(path, "rb") as src:
            while chunk := src.read(chunk_size):
                yield chunk
        padding = -size % tarfile.BLOCKSIZE
        yield b"\0" * padding
        total += len(header) + size + padding
        if progress:
            progress()
    # Two empty blocks end the archive; the whole is padded to tar's record size.
    total += 2 * tarfile.BLOCKSIZE
    yield b"\0" * (2 * tarfile.BLOCKSIZE + (-total % tarfile.RECORDSIZE))


def tar_write(
    *, members: list[tuple[str, Path]], target: Path, progress: Callable[[], None] | None = None
) -> FileDigest:
    """Write the deterministic tar of `members` to `target` atomically."""
    temp = partial_name(target)
    digest, size = hashlib.sha256(), 0
    try:
        with open(temp, "wb") as fh:
            for piece in tar_stream(members=members, progress=progress):
                fh.write(piece)
                digest.update(piece)
                size += len(piece)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except Abandoned:
        raise
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return FileDigest(digest.hexdigest(), size)
