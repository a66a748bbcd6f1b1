"""The small interfaces every device kind implements.

A fingerprint scanner captures a grey image and reports finger presence; some
can also enroll and match on the sensor. A camera streams frames (latest frame
wins) and takes a still. Concrete drivers live in their own packages.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

GreyImage = npt.NDArray[np.uint8]  # H x W, 8-bit grey
BGRImage = npt.NDArray[np.uint8]  # H x W x 3, OpenCV channel order

ProgressFn = Callable[[int, int], None]  # (done, total), e.g. bytes or packets


@dataclass(frozen=True)
class DeviceInfo:
    """What ``station device info`` prints about a device."""

    url: str
    kind: str  # "fingerprint", "camera" or "printer"
    model: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FingerImage:
    """A captured print: 8-bit grey pixels and the sensor's resolution."""

    pixels: GreyImage
    ppi: int = 500


class FingerprintScanner(abc.ABC):
    """A fingerprint scanner. One thread owns an open scanner at a time."""

    url: str

    @abc.abstractmethod
    def info(self) -> DeviceInfo: ...

    @abc.abstractmethod
    def finger_present(self) -> bool: ...

    @abc.abstractmethod
    def capture(self, *, timeout: float = 10.0, progress: ProgressFn | None = None) -> FingerImage:
        """Wait up to ``timeout`` seconds for a finger, then return its image."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> FingerprintScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Camera(abc.ABC):
    """A camera streaming on its own thread; readers see only the latest frame."""

    url: str

    @abc.abstractmethod
    def info(self) -> DeviceInfo: ...

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def latest_frame(self) -> tuple[int, BGRImage] | None:
        """(sequence number, frame) of the newest frame, or None before the first."""

    @abc.abstractmethod
    def still(self, *, timeout: float = 5.0) -> BGRImage:
        """A full-resolution still frame."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Device = FingerprintScanner | Camera
