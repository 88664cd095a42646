"""Images stored once by the SHA-256 of their bytes, verified with Pillow before they are kept
(see image_verify).

A rejected image raises ImageRejected with a message fit for an import report; nothing is written.
"""

import dataclasses
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from medmax_review.core.bulk_write import rows_insert
from medmax_review.sources import image_files
from medmax_review.sources.image_verify import (
    ALLOWED_FORMATS,
    ImageInfo,
    ImageRejected,
    Limits,
    relative_path,
    verify,
)
from medmax_review.sources.models import ImageAsset

__all__ = ["ALLOWED_FORMATS", "CheckedImage", "ImageRejected", "image_check", "image_file_write",
           "image_store", "images_add", "images_store_many", "images_stored"]


@dataclass(frozen=True)
class CheckedImage:
    sha256: str
    ext: str
    format: str
    width: int
    height: int
    size_bytes: int
    data: bytes  # empty once the file is written (see image_file_write)

    @property
    def relative_path(self) -> str:
        return relative_path(self.sha256, self.ext)


def _limits() -> Limits:
    return Limits(settings.MEDMAX_MAX_IMAGE_BYTES, settings.MEDMAX_MAX_IMAGE_PIXELS)


def image_check(*, data: bytes) -> CheckedImage:
    """Verify the bytes are one whole, reasonably sized image; raise ImageRejected otherwise."""
    info = verify(data, _limits())
    return CheckedImage(sha256=hashlib.sha256(data).hexdigest(), ext=info.ext, format=info.format,
                        width=info.width, height=info.height, size_bytes=len(data), data=data)


def image_file_write(checked: CheckedImage) -> CheckedImage:
    """Write the file once (see image_files); returns the image without its bytes in memory."""
    if not checked.data:
        return checked
    image_files.write_once(checked.relative_path, checked.data)
    return dataclasses.replace(checked, data=b"")


def images_stored(*, sha256s) -> dict[str, int]:
    """{sha256: ImageAsset id} of the images already stored among these: one query."""
    return dict(ImageAsset.objects.filter(sha256__in_array=sha256s).values_list("sha256", "id"))


def images_add(*, verified: dict[str, tuple[ImageInfo, int, str]]) -> dict[str, int]:
    """Rows for images verified and written ({sha256: (info, size in bytes, modality)}):
    {sha256: ImageAsset id}."""
    rows = [{"sha256": sha, "file": relative_path(sha, info.ext), "format": info.format,
             "width": info.width, "height": info.height, "size_bytes": size,
             "modality": modality[:40]}
            for sha, (info, size, modality) in verified.items()]
    try:
        with transaction.atomic():
            return dict(zip(verified, rows_insert(model=ImageAsset, rows=rows), strict=True))
    except IntegrityError:
        # A concurrent import stored some of them first.
        ImageAsset.objects.bulk_create([ImageAsset(**row) for row in rows], ignore_conflicts=True)
        return images_stored(sha256s=verified)


def images_store_many(
    *, checked: list[CheckedImage], modality: dict[str, str] | None = None,
    dicom: dict[str, dict] | None = None,
) -> dict[str, ImageAsset]:
    """Store each image once (files and rows); returns {sha256: ImageAsset}. Three queries."""
    unique = {c.sha256: c for c in checked}
    if not unique:
        return {}
    for c in unique.values():
        image_file_write(c)
    existing = {a.sha256: a for a in ImageAsset.objects.filter(sha256__in=unique)}
    modality, dicom = modality or {}, dicom or {}
    ImageAsset.objects.bulk_create(
        [
            ImageAsset(
                sha256=c.sha256,
                file=c.relative_path,
                format=c.format,
                width=c.width,
                height=c.height,
                size_bytes=c.size_bytes,
                modality=modality.get(c.sha256, "")[:40],
                dicom=dicom.get(c.sha256, {}),
            )
            for sha, c in unique.items()
            if sha not in existing
        ],
        ignore_conflicts=True,  # a concurrent import may store the same image
    )
    # An image stored before its DICOM details changed shape (e.g. presets added) is brought up to
    # date; an unchanged re-import writes nothing.
    stale = [a for sha, a in existing.items() if sha in dicom and a.dicom != dicom[sha]]
    for asset in stale:
        asset.dicom = dicom[asset.sha256]
    ImageAsset.objects.bulk_update(stale, ["dicom"])
    if len(existing) < len(unique):
        existing = {a.sha256: a for a in ImageAsset.objects.filter(sha256__in=unique)}
    return existing


def image_store(*, data: bytes, modality: str = "") -> ImageAsset:
    """Verify and store one image; storing the same bytes again returns the same asset."""
    checked = image_check(data=data)
    return images_store_many(checked=[checked], modality={checked.sha256: modality})[
        checked.sha256
    ]

