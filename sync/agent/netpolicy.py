"""The sync agent's network allow-list: a systemd drop-in naming central's addresses only.

``station-sync.service`` says ``IPAddressDeny=any``; ``station provision`` (run as root on the
appliance) resolves central's host and writes ``IPAddressAllow=`` for those addresses, plus
``localhost`` for the local DNS stub, into ``/etc/systemd/system/station-sync.service.d/central.conf``
and reloads systemd. A compromised agent then reaches nothing but central. When central moves to
another address, run ``station provision --renew`` again (or edit the drop-in by hand).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

SYSTEMD_DIR = Path("/etc/systemd/system")
DROPIN = Path("station-sync.service.d") / "central.conf"


def central_addresses(*urls: str) -> list[str]:
    """The IP addresses the hosts of ``urls`` resolve to (literal addresses as they are), sorted."""
    found: set[str] = set()
    for url in urls:
        host = urlsplit(url).hostname
        if not host:
            continue
        try:
            found.add(str(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError:
            continue
        for info in infos:
            found.add(str(ipaddress.ip_address(str(info[4][0]).split("%")[0])))
    return sorted(found, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))


def dropin_text(addresses: list[str]) -> str:
    lines = [
        "# Written by `station provision`: the sync agent may reach central's addresses only.",
        "[Service]",
        "IPAddressAllow=localhost",  # the local DNS stub (127.0.0.53) and loopback
        *(f"IPAddressAllow={a}" for a in addresses),
    ]
    return "\n".join(lines) + "\n"


def write_sync_dropin(addresses: list[str], systemd_dir: Path = SYSTEMD_DIR) -> Path:
    """Write the drop-in (0644, atomically); reload systemd when it runs. The drop-in's path."""
    path = systemd_dir / DROPIN
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dropin_text(addresses), encoding="ascii")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl") and systemd_dir == SYSTEMD_DIR:
        subprocess.run(["systemctl", "daemon-reload"], capture_output=True, check=False, timeout=60)
    return path
