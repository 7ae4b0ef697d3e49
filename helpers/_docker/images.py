"""Images: build one from a Dockerfile, inspect one, list them."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .._errors import BuildFailed, DockerError, ImageNotFound
from .._identity import chapter
from .._output import Table
from .engine import client, engine_errors, find_image, full_name


def _context_tar(path: Path, dockerfile: str | None) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if path.is_dir():
            tar.add(path, arcname=".")
        if dockerfile is not None:
            data = dockerfile.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def build_image(
    path: str | Path,
    tag: str,
    *,
    dockerfile: str | None = None,
    buildargs: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Build ``path`` (a folder with a Dockerfile, or ``dockerfile`` text) as exactly ``tag``."""
    folder = Path(path)
    if dockerfile is None and not (folder / "Dockerfile").is_file():
        raise BuildFailed(
            f"There is no Dockerfile in {folder.resolve()}.",
            hint="Pass the folder that holds the Dockerfile, or the Dockerfile's text as dockerfile=.",
        )
    context = _context_tar(folder, dockerfile)
    output: list[str] = []
    with engine_errors(f"docker build -t {tag}"):
        for chunk in client().api.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            buildargs=dict(buildargs or {}),
            labels=dict(labels or {}),
        ):
            if "stream" in chunk:
                output.append(chunk["stream"])
            if "error" in chunk:
                raise BuildFailed(
                    f"Building {tag} failed: {chunk['error'].strip()}",
                    hint="Read the step that failed below; fix that line of the Dockerfile.",
                    output="".join(output),
                )
    return tag


def build(path: str | Path, name: str, *, dockerfile: str | None = None) -> str:
    """Build an image from a folder (or from ``dockerfile`` text) and tag it with your prefix.
    Returns the tag. It carries your course labels, so ``docker.cleanup()`` removes it.

    CLI: ``docker build -t alice-01-hello:v1 --label course.learner=alice --label
    course.chapter=01-containers PATH``

    >>> build(".", "hello:v1", dockerfile="FROM course/web:v1\\nENV MESSAGE=hi")  # doctest: +SKIP
    'alice-01-hello:v1'
    """
    if ":" not in name or name.endswith(":latest"):
        raise DockerError(
            f"Give {name!r} an explicit version tag, such as {name.split(':')[0]}:v1.",
            hint="The course never uses :latest, because Kubernetes then always tries to pull.",
        )
    return build_image(path, full_name(name), dockerfile=dockerfile, labels=chapter().labels)


@dataclass(frozen=True)
class Image:
    """A snapshot of one image, as ``docker image inspect`` sees it."""

    tag: str
    id: str
    size_mb: float
    labels: dict[str, str]
    env: dict[str, str]
    exposed_ports: list[int]
    command: list[str]
    entrypoint: list[str]
    layers: list[str]

    def __str__(self) -> str:
        return (
            f"image {self.tag} ({self.id.removeprefix('sha256:')[:12]}), {self.size_mb} MB, "
            f"{len(self.layers)} layers\n  CMD {self.command}  EXPOSE {self.exposed_ports}\n"
            f"  ENV {self.env}\n  LABELS {self.labels}"
        )

    __repr__ = __str__

    def based_on(self, other: str) -> bool:
        """Whether this image was built on top of ``other`` (``FROM other``)."""
        target = image(other).id
        api = client().api
        with engine_errors(f"docker image inspect {self.tag}"):
            current: str | None = self.id
            while current:  # the classic builder records each step's parent image
                if current == target:
                    return True
                current = api.inspect_image(current).get("Parent") or None
            has_parents = bool(api.inspect_image(self.id).get("Parent"))
        if has_parents:
            return False
        base = image(other).layers  # BuildKit keeps no parents: compare the layers instead
        return self.layers[: len(base)] == base


def image(tag: str) -> Image:
    """Details of an image (yours, e.g. ``hello:v1``, or any other).

    CLI: ``docker image inspect alice-01-hello:v1``
    """
    for candidate in (full_name(tag), tag):
        raw = find_image(candidate)
        if raw is None:
            continue
        config = raw.attrs.get("Config") or {}
        return Image(
            tag=candidate,
            id=str(raw.id),
            size_mb=round(raw.attrs.get("Size", 0) / 1e6, 1),
            labels=dict(config.get("Labels") or {}),
            env=dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e),
            exposed_ports=sorted(int(p.split("/")[0]) for p in config.get("ExposedPorts") or {}),
            command=list(config.get("Cmd") or []),
            entrypoint=list(config.get("Entrypoint") or []),
            layers=list((raw.attrs.get("RootFS") or {}).get("Layers") or []),
        )
    raise ImageNotFound(
        f"There is no image {tag!r} on this machine.",
        hint="See what there is with docker.images().",
    )


def images() -> Table:
    """The course's images and yours.  CLI: ``docker images``"""
    prefix = chapter().learner + "-"
    course = ("busybox:", "course/web:", prefix)  # not the cluster's add-ons, nor others' images
    rows = []
    with engine_errors("docker images"):
        listed = client().images.list()
    for img in listed:
        for tag in img.tags:
            if tag.startswith(course):
                size = f"{img.attrs.get('Size', 0) / 1e6:.1f} MB"
                rows.append([tag, img.short_id.removeprefix("sha256:"), size])
    return Table(["image", "id", "size"], sorted(rows))
