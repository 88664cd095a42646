"""Files of an export: written under a hidden temporary name, hashed on the fly, renamed when
complete, so a crash never leaves a file that looks whole; images placed by content hash; the
deterministic, streamed images.tar.
"""

import hashlib
import os
import shutil
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
# Why an image was left out, in the manifest.
IMAGE_MISSING = "image file missing from the image store"
IMAGE_MISMATCH = "image file does not match its content hash"
WRITE_BYTES = 1 << 16
# Files synced to disk at once inside synced_together(): an export ends with about ten files,
# and each sync waits for the disk (about 10 ms here) while the next could be under way.
SYNCS_IN_FLIGHT = 8
_syncing: ContextVar["_Syncing | None"] = ContextVar("syncing", default=None)


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
class AtomicFile:
    """A file written under a temporary name, hashed on the fly, renamed when complete."""

    final: Path
    digest: object = field(default_factory=hashlib.sha256)

    def __post_init__(self):
        self.temp = partial_name(self.final)
        self.temp.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.temp, "wb")  # noqa: SIM115 - closed by commit() or abort()
        # Rows are small: hashed and written in pieces of about WRITE_BYTES, not one by one.
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._written = 0

    @property
    def size(self) -> int:
        """Bytes written so far (flushed or not)."""
        return self._written + self._pending_size

    def write(self, text: str | bytes) -> None:
        """Append text (UTF-8) or bytes."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= WRITE_BYTES:
            self._flush()

    def _flush(self) -> None:
        data = b"".join(self._pending)
        self._written += len(data)
        self._fh.write(data)
        self.digest.update(data)
        self._pending.clear()
        self._pending_size = 0

    def commit(self, final: Path | None = None) -> FileDigest:
        """Publish under the final name (or `final`, when it is only known at the end): once
        its bytes are on disk, so a crash never leaves a short file under that name. Inside
        synced_together() that happens in a thread, and the block's end waits for it."""
        self.final = final or self.final
        self._flush()
        self._fh.flush()
        digest = FileDigest(self.digest.hexdigest(), self.size)
        syncing = _syncing.get()
        if syncing is None:
            self._publish()
        else:
            syncing.pending.append(syncing.pool.submit(self._publish))
        return digest

    def _publish(self) -> None:
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.temp, self.final)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def abort(self) -> None:
        self.close()
        self.temp.unlink(missing_ok=True)


@dataclass
class _Syncing:
    pool: ThreadPoolExecutor
    pending: list[Future] = field(default_factory=list)


@contextmanager
def synced_together() -> Iterator[None]:
    """Files committed inside are synced to disk concurrently and each renamed once its sync
    returns; leaving the block waits for all of them and raises the first error."""
    with ThreadPoolExecutor(max_workers=SYNCS_IN_FLIGHT, thread_name_prefix="fsync") as pool:
        syncing = _Syncing(pool)
        token = _syncing.set(syncing)
        try:
            yield
        finally:
            _syncing.reset(token)
            # Waited for even when the block failed: no sync outlives it.
            errors = [e for e in (f.exception() for f in syncing.pending) if e is not None]
    if errors:
        raise errors[0]


def hash_file(path: Path) -> FileDigest:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return FileDigest(digest.hexdigest(), size)


def image_verify(*, source: Path, sha256: str, hashed: bool = True) -> str:
    """Why a stored image cannot be published ("" when it can): missing, or (when `hashed`)
    bytes that are not the ones its hash names."""
    if not source.is_file():
        return IMAGE_MISSING
    if hashed and hash_file(source).sha256 != sha256:
        return IMAGE_MISMATCH
    return ""


def image_put(*, source: Path, target: Path) -> None:
    """Put a verified image at `target` (hard link, else copy), replacing any file there: names
    are content hashes, so that file holds the same bytes."""
    temp = partial_name(target)
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)


def fetch_image(*, read: Callable[[], bytes], target: Path, sha256: str) -> str:
    """Write an image read from object storage at `target`, checked against its hash.

    Returns "" when the image is in place, else the reason it could not be.
    """
    if target.exists():
        return ""
    try:
        data = read()
    except FileNotFoundError:
        return IMAGE_MISSING
    if hashlib.sha256(data).hexdigest() != sha256:
        return IMAGE_MISMATCH
    temp = partial_name(target)
    temp.write_bytes(data)
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
