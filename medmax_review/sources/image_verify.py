"""Checking image bytes with Pillow and writing them under their hash: no Django here, so a
worker process of the image pool runs it without settings or a database connection."""

import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

# Formats a browser can show; anything else Pillow reads is refused rather than served broken.
ALLOWED_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp", "BMP": "bmp"}
# Camera JPEGs with a second picture inside are reported as MPO; browsers show them as JPEG.
FORMAT_ALIASES = {"MPO": "JPEG"}


class ImageRejected(ValueError):
    """The bytes are not an image we will keep; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    ext: str
    format: str
    width: int
    height: int


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int


def relative_path(sha256: str, ext: str) -> str:
    return f"images/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"


def verify(data: bytes, limits: Limits) -> ImageInfo:
    """Verify the bytes are one whole, reasonably sized image; raise ImageRejected otherwise."""
    if len(data) > limits.max_bytes:
        raise ImageRejected(f"image is {len(data)} bytes, over the limit of {limits.max_bytes} bytes")
    if not data:
        raise ImageRejected("image file is empty")
    max_pixels = limits.max_pixels
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
    return ImageInfo(ext=ALLOWED_FORMATS[fmt], format=fmt.lower(), width=width, height=height)


def file_write_once(target: Path, data: bytes) -> None:
    """Write the file unless it is there; write then rename, so a reader never sees half."""
    if target.exists():
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    except FileNotFoundError:  # the first image of its folder
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)


def verify_and_write(items: list[tuple[bytes, str]], media_root: str | None,
                     limits: Limits) -> list[ImageInfo | str]:
    """New images [(data, sha256)], in whichever process: each one's details once written
    under `media_root` (not written without one), or why it was refused."""
    out: list[ImageInfo | str] = []
    for data, sha256 in items:
        try:
            info = verify(data, limits)
        except ImageRejected as exc:
            out.append(str(exc))
            continue
        if media_root is not None:
            file_write_once(Path(media_root) / relative_path(sha256, info.ext), data)
        out.append(info)
    return out
