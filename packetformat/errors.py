"""The root of the packet format's errors (``packetformat``).

:class:`PacketFormatError` is what every error of this package derives from: bytes that are not a
well-formed document (:class:`~packetformat.cbor.CborError`) or a packet that does not parse,
verify or open (:class:`~packetformat.packet.PacketError`). Each carries a dotted ``code`` (safe to
log: never PII) and a ``message`` saying what failed. The whole tree is in ``docs/errors.md``.
"""

from __future__ import annotations


class PacketFormatError(Exception):
    """Base of every packet-format error: a dotted ``code`` and a ``message``."""

    code: str = "format.invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message
