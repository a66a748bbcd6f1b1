"""Reading the files of an enrollment folder without trusting their names or their kind.

``station enroll --from-json`` runs as root on files someone else prepared. A name in the JSON may
point anywhere (``..``, an absolute path, a symbolic link), at something that is not a file (a FIFO
that blocks forever, ``/dev/zero`` that never ends) or at a file far larger than any enrollment
needs. :func:`read_member` opens each component relative to the folder's descriptor with
``O_NOFOLLOW`` (the ``openat`` walk: no component is looked up twice, so a swapped-in link does
not win a race), refuses anything but a regular file, and reads at most ``limit`` bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from station.errors import ValidationFailed

MAX_NAME_CHARS = 255
_READ_CHUNK = 1 << 16
_URDU = "اندراج کی فائل میں غلطی ہے: تکنیکی عملے سے رابطہ کریں۔"


def refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, urdu=_URDU, code="enrollment.file")


@contextlib.contextmanager
def open_folder(path: Path) -> Iterator[int]:
    """A descriptor of the folder ``path`` (closed on exit)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise refuse(f"cannot open the enrollment folder {path} ({exc.strerror})") from exc
    try:
        yield fd
    finally:
        os.close(fd)


def _components(name: object, what: str) -> list[str]:
    if not isinstance(name, str) or not name:
        raise refuse(f"{what}: give the file name")
    if len(name) > MAX_NAME_CHARS or "\x00" in name or not name.isprintable():
        raise refuse(f"{what}: the file name is not a plain name")
    if name.startswith("/"):
        raise refuse(f"{what}: {name!r} is an absolute path; name a file inside the enrollment's folder")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise refuse(f"{what}: {name!r} leaves the enrollment's folder or is not a plain path")
    return parts


def read_member(folder_fd: int, name: object, *, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``name`` inside the folder (at most ``limit`` of them)."""
    parts = _components(name, what)
    fd = os.dup(folder_fd)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY: a tty never becomes ours.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        nxt = os.open(parts[-1], flags, dir_fd=fd)
        os.close(fd)
        fd = nxt
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise refuse(
                f"{what}: {name} is (or passes through) a symbolic link: copy the file itself into the"
                " enrollment's folder"
            ) from exc
        raise refuse(f"{what}: cannot read {name} ({exc.strerror})") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise refuse(f"{what}: {name} is not a regular file (a device, FIFO or socket): refused")
        if st.st_size > limit:
            raise refuse(f"{what}: {name} is {st.st_size} bytes, over the {limit}-byte limit")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:  # bounded: at most limit + 1 bytes are ever read
            chunk = os.read(fd, min(_READ_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise refuse(f"{what}: {name} grew past the {limit}-byte limit while it was read")
        return b"".join(chunks)
    except OSError as exc:
        raise refuse(f"{what}: cannot read {name} ({exc.strerror})") from exc
    finally:
        os.close(fd)


def read_file(path: Path, *, limit: int, what: str) -> bytes:
    """A regular file given on the command line: the same rules, its folder being its parent."""
    with open_folder(path.parent) as fd:
        return read_member(fd, path.name, limit=limit, what=what)
