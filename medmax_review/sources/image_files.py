"""Where the stored images' bytes live; every read and write of them goes through here.

By default they are files under MEDIA_ROOT, used by path: a write is a rename, an export
hard-links them. With IMAGE_STORAGE_BACKEND set (django-storages' S3 backend, for object
storage) they live in Django's STORAGES["images"]; `local_path` is then None and callers read
bytes instead. Names are the same in both: `ImageAsset.file`, derived from the content hash, so
a name never points at other bytes and a write that finds its name taken has nothing to do.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from medmax_review.sources.image_verify import file_write_once

IMAGES = "images"  # the STORAGES alias
# Object storage is bound by round trips, not the CPU: this many uploads in flight.
UPLOADS_IN_FLIGHT = 8


def object_store() -> Storage | None:
    """The images' Django storage, or None when they are plain files under MEDIA_ROOT."""
    return storages[IMAGES] if IMAGES in settings.STORAGES else None


def local_path(name: str) -> Path | None:
    """The image's file on this machine, or None when images are in object storage."""
    return None if object_store() else Path(settings.MEDIA_ROOT) / name


def write_once(name: str, data: bytes) -> None:
    store = object_store()
    if store is None:
        file_write_once(Path(settings.MEDIA_ROOT) / name, data)
    elif not store.exists(name):
        saved = store.save(name, ContentFile(data))
        if saved != name:  # a backend that renames rather than overwrites breaks content addresses
            store.delete(saved)
            raise RuntimeError(f"image storage saved {name} as {saved}; set it to overwrite")


def write_many(items: list[tuple[str, bytes]]) -> None:
    """Write each (name, bytes) once; to object storage several at a time."""
    if object_store() is None or len(items) < 2:
        for name, data in items:
            write_once(name, data)
        return
    with ThreadPoolExecutor(max_workers=min(UPLOADS_IN_FLIGHT, len(items))) as pool:
        for _ in pool.map(lambda item: write_once(*item), items):
            pass


def exists(name: str) -> bool:
    store = object_store()
    return (Path(settings.MEDIA_ROOT) / name).is_file() if store is None else store.exists(name)


def open_file(name: str) -> IO[bytes]:
    """The image opened for reading; FileNotFoundError when it is not there (Django's storages
    raise it themselves, so object storage costs one request, not an existence check too)."""
    store = object_store()
    if store is None:
        return open(Path(settings.MEDIA_ROOT) / name, "rb")
    return store.open(name, "rb")


def read(name: str) -> bytes:
    with open_file(name) as fh:
        return fh.read()
