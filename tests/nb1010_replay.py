"""Test helper: the NB-1010-U umockdev recording as a list of bulk transfers, and a strict link.

``ReplayLink`` answers the driver exactly as the recorded sensor did and, like
``umockdev-run``, fails on any request that differs from the recording (other
bytes, other length, other order). Used for fast driver tests and for fault
injection (unplug, timeout, garbage) at a chosen transfer; the real replay
under umockdev is in ``test_nb1010_umockdev.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drivers.errors import DeviceError

RECORDING = Path(__file__).parent / "fixtures" / "usb" / "nb1010"
EXPECTED_SHA256 = (RECORDING / "expected.sha256").read_text().split()[0]


@dataclass(frozen=True)
class Transfer:
    endpoint: int  # 0x02 out, 0x83 in
    data: bytes


def load_transfers(path: Path = RECORDING / "capture.ioctl") -> list[Transfer]:
    """Bulk URBs of the recording, in order (umockdev's USBDEVFS_REAPURBNDELAY lines)."""
    transfers = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields or fields[0] != "USBDEVFS_REAPURBNDELAY":
            continue
        # name, status, type, endpoint, status, flags, buffer_length, actual_length, error_count, data
        endpoint, buffer_length, actual_length = int(fields[3]), int(fields[6]), int(fields[7])
        data = bytes.fromhex(fields[9])
        assert len(data) == buffer_length == actual_length, line[:80]
        transfers.append(Transfer(endpoint, data))
    return transfers


class ReplayMismatch(AssertionError):
    pass


class ReplayLink:
    """A BulkLink that plays back ``transfers``; ``fault(index)`` may raise instead."""

    def __init__(
        self,
        transfers: list[Transfer],
        *,
        fault: Callable[[int], DeviceError | None] | None = None,
    ) -> None:
        self.transfers = transfers
        self.position = 0
        self.closed = False
        self._fault = fault

    def _next(self, endpoint: int) -> Transfer:
        if self.position >= len(self.transfers):
            raise ReplayMismatch(f"transfer {self.position} on ep {endpoint:#04x} is past the recording")
        if self._fault is not None:
            error = self._fault(self.position)
            if error is not None:
                raise error
        transfer = self.transfers[self.position]
        if transfer.endpoint != endpoint:
            raise ReplayMismatch(
                f"transfer {self.position}: ep {endpoint:#04x}, recorded {transfer.endpoint:#04x}"
            )
        self.position += 1
        return transfer

    def write(self, data: bytes, *, timeout_ms: int) -> None:
        transfer = self._next(0x02)
        if transfer.data != data:
            raise ReplayMismatch(
                f"transfer {self.position - 1}: sent {data.hex()}, recorded {transfer.data.hex()}"
            )

    def read(self, size: int, *, timeout_ms: int) -> bytes:
        transfer = self._next(0x83)
        if len(transfer.data) != size:
            raise ReplayMismatch(f"transfer {self.position - 1}: read {size}, recorded {len(transfer.data)}")
        return transfer.data

    def describe(self) -> dict[str, str]:
        return {"bus": "1", "address": "3"}

    def close(self) -> None:
        self.closed = True
