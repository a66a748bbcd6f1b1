"""The typed errors of the export formats: each carries a dotted ``code`` and says what to do."""

from __future__ import annotations

from sync.central.home import CentralError


class ExportError(CentralError):
    """A packet that cannot be written in the asked format, or an export that cannot run."""

    code = "export.failed"


class ReadError(CentralError):
    """A file that is not a well-formed ANSI/NIST-ITL 1-2011 traditional-encoding transaction."""

    code = "ansi_nist.invalid"

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        where = f" (at byte {offset})" if offset is not None else ""
        super().__init__(f"{message}{where}")
        self.offset = offset


class TruncatedFile(ReadError):
    """The file ends before a record or field it announces is complete."""

    code = "ansi_nist.truncated"


class MalformedFile(ReadError):
    """The bytes break the traditional encoding: tags, separators, lengths or characters."""

    code = "ansi_nist.malformed"


class NonConformant(ReadError):
    """Well-formed records whose fields break ANSI/NIST-ITL 1-2011 (missing, out of range, CNT)."""

    code = "ansi_nist.nonconformant"
