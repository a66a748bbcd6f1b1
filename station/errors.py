"""The station's error tree.

Every error a person may see carries a stable ``code`` (safe to log: never PII),
an English message that says what happened and what to do, and the same in Urdu
where an operator may read it. Technicians and logs use ``code``.
"""

from __future__ import annotations


class StationError(Exception):
    """Base of every error the station reports to a person."""

    code: str = "station.error"

    def __init__(self, message: str, *, urdu: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.urdu = urdu
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(StationError):
    code = "config.invalid"


class KeyProblem(StationError):
    """Missing, unreadable, badly protected or wrong key. The station must stop."""

    code = "keys.problem"


class StoreError(StationError):
    """The encrypted store cannot be opened or used. Nothing on disk was changed."""

    code = "store.error"


class DiskFull(StationError):
    code = "store.disk_low"


class ValidationFailed(StationError):
    """An enrollment did not pass validation; ``problems`` lists each field's message."""

    code = "enrollment.invalid"

    def __init__(
        self,
        message: str,
        *,
        urdu: str | None = None,
        code: str | None = None,
        problems: list[object] | None = None,
    ) -> None:
        super().__init__(message, urdu=urdu, code=code)
        self.problems: list[object] = list(problems or [])
