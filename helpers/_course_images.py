"""The course's own container images: built locally from one small base, never pulled."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from ._docker.engine import client, engine_errors, find_image
from ._docker.images import build_image
from ._errors import DockerError, ImageNotFound
from ._output import step

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
BASE_IMAGE = "busybox:1.35"
WEB_VERSIONS = ("v1", "v2")
COURSE_IMAGES = tuple(f"course/web:{v}" for v in WEB_VERSIONS)
SOURCE_LABEL = "course.source-hash"
_STATIC_BUSYBOX = (Path("/bin/busybox"), Path("/usr/bin/busybox"))


def has_image(tag: str) -> bool:
    return find_image(tag) is not None


def _static_busybox() -> Path | None:
    for candidate in _STATIC_BUSYBOX:
        if candidate.exists() and _is_static(candidate):
            return candidate
    return None


def _is_static(binary: Path) -> bool:
    # A static ELF has no PT_INTERP segment, so no "ld-linux" interpreter path inside it.
    return (
        b"/lib64/ld-linux" not in binary.read_bytes()[:4096] and binary.stat().st_size > 1_000_000
    )


def ensure_base() -> str:
    """Make sure busybox:1.35 exists: built from Debian's static busybox, or pulled when online."""
    if has_image(BASE_IMAGE):
        return BASE_IMAGE
    busybox = _static_busybox()
    if busybox is not None:
        with (
            step(f"Building {BASE_IMAGE} from {busybox} (offline base)"),
            tempfile.TemporaryDirectory() as context,
        ):
            shutil.copy2(busybox, Path(context) / "busybox")
            shutil.copy2(IMAGES_DIR / "base" / "Dockerfile", Path(context) / "Dockerfile")
            build_image(context, BASE_IMAGE)
        return BASE_IMAGE
    with step(f"Pulling {BASE_IMAGE}"):
        try:
            with engine_errors(f"docker pull {BASE_IMAGE}"):
                client().images.pull(BASE_IMAGE)
        except DockerError as error:
            raise ImageNotFound(
                f"{BASE_IMAGE} is not here, could not be pulled, and no static busybox was found.",
                hint="On Debian/Ubuntu: sudo apt-get install busybox-static, then `make images`.",
                output=str(error),
            ) from None
    return BASE_IMAGE


def source_hash(folder: Path) -> str:
    """A hash of every file in an image's folder: the image is rebuilt when it changes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _up_to_date(tag: str, wanted: str) -> bool:
    found = find_image(tag)
    return found is not None and (found.labels or {}).get(SOURCE_LABEL) == wanted


def build_course_images(*, force: bool = False) -> list[str]:
    """Build every course image that is missing or out of date (all with ``force``)."""
    ensure_base()
    wanted = source_hash(IMAGES_DIR / "web")
    for version in WEB_VERSIONS:
        tag = f"course/web:{version}"
        if force or not _up_to_date(tag, wanted):
            with step(f"Building {tag}"):
                build_image(
                    IMAGES_DIR / "web",
                    tag,
                    buildargs={"VERSION": version},
                    labels={SOURCE_LABEL: wanted},
                )
    return list(COURSE_IMAGES)
