"""Decrypt SQLCipher 4 pages with the raw key, so tests can look inside the database and WAL files.

SQLCipher 4 with a raw 256-bit key: each page is AES-256-CBC over all but the last 80 reserved bytes
(a 16-byte IV, then a 64-byte HMAC-SHA512); page 1 starts with the 16-byte salt. WAL files have a
32-byte header and a 24-byte header before each page frame.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PAGE = 4096
RESERVE = 80


def _decrypt_page(page: bytes, key: bytes, *, salted: bool) -> bytes:
    start = 16 if salted else 0
    iv = page[PAGE - RESERVE : PAGE - RESERVE + 16]
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(page[start : PAGE - RESERVE]) + dec.finalize()


def database_plaintext(path: Path, key: bytes) -> bytes:
    raw = path.read_bytes() if path.exists() else b""
    pages = [raw[i : i + PAGE] for i in range(0, len(raw) - PAGE + 1, PAGE)]
    return b"".join(_decrypt_page(p, key, salted=(n == 0)) for n, p in enumerate(pages))


def wal_plaintext(path: Path, key: bytes) -> bytes:
    raw = path.read_bytes() if path.exists() else b""
    out = []
    offset = 32
    while offset + 24 + PAGE <= len(raw):
        page_no = int.from_bytes(raw[offset : offset + 4], "big")
        out.append(_decrypt_page(raw[offset + 24 : offset + 24 + PAGE], key, salted=(page_no == 1)))
        offset += 24 + PAGE
    return b"".join(out)
