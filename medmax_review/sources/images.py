"""Images stored once by the SHA-256 of their bytes, verified with Pillow before they are kept.

A rejected image raises ImageRejected with a message fit for an import report; nothing is written.
"""

import dataclasses
import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from PIL import Image

from medmax_review.sources.models import ImageAsset

# Formats a browser can show; anything else Pillow reads is refused rather than served broken.
ALLOWED_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}
# Camera JPEGs with a second picture inside are reported as MPO; browsers show them as JPEG.
FORMAT_ALIASES = {"MPO": "JPEG"}


class ImageRejected(ValueError):
    """The bytes are not an image we will keep; the message says why."""


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
        return f"images/{self.sha256[:2]}/{self.sha256[2:4]}/{self.sha256}.{self.ext}"


def image_check(*, data: bytes) -> CheckedImage:
    """Verify the bytes are one whole, reasonably sized image; raise ImageRejected otherwise."""
    limit = settings.MEDMAX_MAX_IMAGE_BYTES
    if len(data) > limit:
        raise ImageRejected(f"image is {len(data)} bytes, over the limit of {limit} bytes")
    if not data:
        raise ImageRejected("image file is empty")
    max_pixels = settings.MEDMAX_MAX_IMAGE_PIXELS
    # Pillow's own bomb check reads this global; keep it in step with our setting.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                fmt, (width, height) = FORMAT_ALIASES.get(im.format, im.format), im.size
                im.verify()
            if width * height > max_pixels:
                raise ImageRejected(
                    f"image is {width}x{height} pixels, over the limit of {max_pixels} pixels"
                )
            # verify() checks structure only; decoding catches truncated pixel data.
            with Image.open(io.BytesIO(data)) as im:
                im.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageRejected(
            f"image looks like a decompression bomb (over {max_pixels} pixels)"
        ) from None
    except ImageRejected:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        raise ImageRejected(f"not a readable image ({type(exc).__name__}: {exc})") from None
    if fmt not in ALLOWED_FORMATS:
        raise ImageRejected(f"image format {fmt} is not supported (use PNG, JPEG, GIF, WebP)")
    return CheckedImage(
        sha256=hashlib.sha256(data).hexdigest(),
        ext=ALLOWED_FORMATS[fmt],
        format=fmt.lower(),
        width=width,
        height=height,
        size_bytes=len(data),
        data=data,
    )


def image_file_write(checked: CheckedImage) -> CheckedImage:
    """Write the file under MEDIA_ROOT once; returns the image without its bytes in memory."""
    if not checked.data:
        return checked
    target = Path(settings.MEDIA_ROOT) / checked.relative_path
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(checked.data)
        os.replace(tmp, target)
    return dataclasses.replace(checked, data=b"")


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


def image_path(asset: ImageAsset) -> Path:
    return Path(settings.MEDIA_ROOT) / asset.file
