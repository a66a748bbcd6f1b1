"""Where stored envelopes live: the :class:`EnvelopeStore` interface and its directory implementation.

An envelope is addressed by its SHA-256, so a store is a put-once, read-many map from digest to
bytes; writing the same bytes twice is harmless. Two implementations exist:

- :class:`DirectoryEnvelopeStore`: ``blobs/<sha[:2]>/<sha256>`` files, written through a temporary
  file, fsync'd, renamed and the directory fsync'd (default for the embedded SQLite backend);
- ``PgEnvelopeStore`` (``sync.central.pg_storage``): a table in PostgreSQL, written in the same
  transaction as the packet's row (default for the PostgreSQL backend).

An S3-compatible object store would implement the same three methods (``docs/scale.md``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path
from typing import Protocol

from sync.central.home import CentralError, fsync_dir


class StorageFull(CentralError):
    """Central has no room left for this write (disk full, or under the configured reserve)."""

    code = "storage.full"


def check_sha256(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a SHA-256 hex digest")
    return sha256


class EnvelopeStore(Protocol):
    def put(self, sha256: str, data: bytes) -> None:
        """Store ``data`` under its digest durably before returning (idempotent)."""

    def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``; ``FileNotFoundError`` if absent, ``ValueError`` if damaged."""

    def has(self, sha256: str) -> bool: ...


class DirectoryEnvelopeStore:
    """Content-addressed files under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def put(self, sha256: str, data: bytes) -> None:
        path = self.path(sha256)
        if path.exists() and path.stat().st_size == len(data):
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{sha256}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            finally:
                if tmp.exists():
                    tmp.unlink()
            fsync_dir(path.parent)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("no space left for envelopes") from exc
            raise

    def get(self, sha256: str) -> bytes:
        data = self.path(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"blob {sha256[:12]}… is damaged (hash mismatch)")
        return data
