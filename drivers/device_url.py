"""A parsed device URL (``scheme://host/path?params``): what the openers receive.

Kept apart from the registry in :mod:`drivers.url` so that a backend's opener can name the type
without importing the registry that imports it lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from drivers.errors import UnsupportedURL


@dataclass(frozen=True)
class DeviceURL:
    raw: str
    scheme: str
    host: str  # netloc: "298d:1010" for usb, "r30x" for sim, "" for file paths
    path: str  # "/dev/ttyUSB0"
    params: dict[str, str]

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)

    def int_param(self, name: str, default: int) -> int:
        value = self.params.get(name)
        if value is None:
            return default
        try:
            return int(value, 0)
        except ValueError:
            raise UnsupportedURL(f"{name}={value!r} in {self.raw} is not a number") from None


def parse_url(url: str) -> DeviceURL:
    parts = urlsplit(url)
    if not parts.scheme:
        raise UnsupportedURL(f"{url!r} is not a device URL: use serial://, usb://, camera:// or sim://")
    return DeviceURL(
        raw=url,
        scheme=parts.scheme.lower(),
        host=parts.netloc,
        path=parts.path,
        params=dict(parse_qsl(parts.query, keep_blank_values=True)),
    )
