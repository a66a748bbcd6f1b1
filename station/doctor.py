"""``station doctor``: check everything a station needs and say what to fix.

The disk, certificate and queue checks judge the parts of the station's status snapshot
(``station.status``: the same figures ``station status``, the kiosk and the heartbeat show); the
other checks look at what a snapshot does not hold (keys, clock, opening the devices, central's TLS).

Each check returns a :class:`Finding` (ok, warn, fail or skip) with a one-line detail and, when
something is wrong, the fix in words a field technician can act on. A check never raises: an
unexpected error becomes a failed finding. Findings never contain citizens' data.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from station.errors import StationError
from station.home import StationConfig, StationHome
from station.status import certificate_status, disk_status, queue_status

Status = Literal["ok", "warn", "fail", "skip"]
CERT_WARN_DAYS = 7


@dataclass
class Finding:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class DoctorContext:
    home: StationHome
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    config: StationConfig | None = None
    device_timeout: float = 5.0


Check = Callable[[DoctorContext], Finding]


def check_config(ctx: DoctorContext) -> Finding:
    try:
        ctx.config = ctx.home.load_config()
    except StationError as exc:
        return Finding("config", "fail", exc.message, "Provision the station: station provision --help")
    cfg = ctx.config
    if not cfg.station_id:
        return Finding(
            "config", "fail", f"{ctx.home.config_path} has no station_id", "Run station provision."
        )
    return Finding("config", "ok", f"station {cfg.station_id}, config {ctx.home.config_path}")


def check_disk(ctx: DoctorContext) -> Finding:
    from station.store import DISK_FULL_FREE_BYTES

    disk = disk_status(ctx.home.root, ctx.config or StationConfig())
    free, free_mb, floor = disk.free_bytes, disk.free_mb, disk.floor_mb

    if free < DISK_FULL_FREE_BYTES:
        return Finding(
            "disk",
            "fail",
            f"the disk is full ({free // 1024} KB free): the queue cannot write",
            "Free space now (let the station sync, then 'station purge'; remove other files). The keys and"
            " the queue are not damaged: do not re-provision or replace the disk.",
        )
    if free_mb < floor:
        return Finding(
            "disk",
            "fail",
            f"{free_mb} MB free, below the {floor} MB floor: new enrollments are refused",
            "Let the station sync (acknowledged packets are purged), or free space on the disk.",
        )
    if free_mb < 2 * floor:
        return Finding(
            "disk", "warn", f"{free_mb} MB free, near the {floor} MB floor", "Check the station syncs."
        )
    return Finding("disk", "ok", f"{free_mb} MB free (floor {floor} MB)")


def check_certificate(ctx: DoctorContext) -> Finding:
    cert = certificate_status(ctx.home.pki)
    if not cert.present:
        return Finding(
            "certificate",
            "fail",
            f"no station certificate in {ctx.home.pki_dir}",
            "Provision the station with a token from central: station provision --help",
        )
    if cert.not_before is None or cert.not_after is None:
        return Finding(
            "certificate",
            "fail",
            cert.problem,
            "Ask central for a new token and provision again (keeps the queue).",
        )
    left = cert.not_after - ctx.now
    if ctx.now < cert.not_before:
        return Finding(
            "certificate",
            "fail",
            f"not valid before {cert.not_before:%Y-%m-%d %H:%M} UTC: the clock is wrong",
            "Set the clock (timedatectl set-ntp true), then run station doctor again.",
        )
    if left.total_seconds() <= 0:
        return Finding(
            "certificate",
            "fail",
            f"expired on {cert.not_after:%Y-%m-%d}",
            "Ask central for a new token and provision again (keeps the queue).",
        )
    if left.days < CERT_WARN_DAYS:
        return Finding(
            "certificate",
            "warn",
            f"expires in {left.days} days ({cert.not_after:%Y-%m-%d})",
            "Connect the station to central so the agent renews it (station sync once).",
        )
    return Finding("certificate", "ok", f"valid until {cert.not_after:%Y-%m-%d} ({left.days} days)")


def ntp_synchronised() -> bool | None:
    if shutil.which("timedatectl") is None:
        return None
    proc = subprocess.run(
        ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
        capture_output=True,
        text=True,
        check=False,
        timeout=5,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() == "yes"


def check_clock(ctx: DoctorContext) -> Finding:
    build = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    if ctx.now < build:
        return Finding(
            "clock",
            "fail",
            f"the clock says {ctx.now:%Y-%m-%d}, before this software was built",
            "Set the date and time: timedatectl set-ntp true (or timedatectl set-time).",
        )
    synced = ntp_synchronised()
    if synced is False:
        return Finding(
            "clock",
            "warn",
            f"{ctx.now:%Y-%m-%d %H:%M} UTC, not synchronised with a time server",
            "Enable time synchronisation: timedatectl set-ntp true",
        )
    note = "synchronised" if synced else "synchronisation unknown (no timedatectl)"
    return Finding("clock", "ok", f"{ctx.now:%Y-%m-%d %H:%M} UTC, {note}")


def _device_check(name: str, url: str, timeout: float) -> Finding:
    if not url:
        return Finding(name, "fail", f"no {name} configured", f"Set {name}_url in station.toml.")
    from drivers.errors import DeviceError
    from drivers.url import open_device

    try:
        device = open_device(url)
    except DeviceError as exc:
        return Finding(
            name,
            "fail",
            f"{url}: {exc}",
            f"Check the {name} is plugged in (station device list), then retry.",
        )
    try:
        info = device.info()
    except DeviceError as exc:
        return Finding(name, "fail", f"{url}: {exc}", f"Replug the {name}; if it persists, replace it.")
    finally:
        device.close()
    return Finding(name, "ok", f"{url}: {info.describe() if hasattr(info, 'describe') else info}")


def check_scanner(ctx: DoctorContext) -> Finding:
    if ctx.config is None:
        return Finding("scanner", "skip", "no configuration")
    return _device_check("scanner", ctx.config.scanner_url, ctx.device_timeout)


def check_camera(ctx: DoctorContext) -> Finding:
    if ctx.config is None:
        return Finding("camera", "skip", "no configuration")
    return _device_check("camera", ctx.config.camera_url, ctx.device_timeout)


def check_central_reachable(ctx: DoctorContext) -> Finding:
    if ctx.config is None or not ctx.config.central_url:
        return Finding("central", "skip", "no central_url configured")
    parts = urlsplit(ctx.config.central_url)
    host, port = parts.hostname or "", parts.port or 443
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            tls = ssl.create_default_context()
            ca = ctx.home.pki.ca_cert
            if ca.is_file():
                tls = ssl.create_default_context(cafile=str(ca))
            with tls.wrap_socket(sock, server_hostname=host):
                pass
    except ssl.SSLError as exc:
        return Finding(
            "central",
            "fail",
            f"{host}:{port} answers but its TLS is not trusted ({exc.reason})",
            "Check central_url; if central's CA changed, provision again.",
        )
    except OSError as exc:
        return Finding(
            "central",
            "warn",
            f"{host}:{port} not reachable ({exc.strerror or exc})",
            "Check the network cable/modem; the queue is kept and uploads when central is back.",
        )
    return Finding("central", "ok", f"{host}:{port} reachable over TLS")


def check_keys(ctx: DoctorContext) -> Finding:
    if ctx.config is None:
        return Finding("keys", "skip", "no configuration")
    from station.keys import KeyStore

    keys = KeyStore(ctx.home, ctx.config.key_backend)
    try:
        keys.db_key()
        keys.identity_key()
    except StationError as exc:
        return Finding(
            "keys",
            "fail",
            exc.message,
            "Do not re-initialise: call the support desk. If the keys are lost, the queue cannot be"
            " read again; decommission and provision the station anew.",
        )
    return Finding("keys", "ok", f"database and identity keys present ({ctx.config.key_backend} backend)")


STORE_FIX = "Do not delete the database: call the support desk."
STORE_FIXES = {
    "store.disk_full": "The disk is full, the key is fine: free space (let the station sync, then"
    " 'station purge'; remove other files) and run station doctor again. Do not re-provision.",
    "store.io": "The disk reports I/O errors: check it (system log, SMART) before anything else.",
    "store.rolled_back": "Find out why the queue is older than the station last wrote (a restored"
    " backup?) and whether the missing packets reached central; then: station audit acknowledge-rollback",
    "store.permissions": "Give the queue back to the station's user: chown station:station"
    " /var/lib/station/queue.db* (or run 'station provision --renew').",
}


def check_store(ctx: DoctorContext) -> Finding:
    if ctx.config is None:
        return Finding("queue", "skip", "no configuration")
    from station.session import open_station

    try:
        station = open_station(ctx.home)  # HMAC of every page checked
    except StationError as exc:
        return Finding("queue", "fail", exc.message, STORE_FIXES.get(exc.code, STORE_FIX))
    now = ctx.now.timestamp()
    with station:
        queue = queue_status(station.store, station.audit.head(), now=now)
        audit = station.audit.verify()
    counts = queue.counts
    detail = f"{queue.pending} pending, {counts['acked']} acked, {counts['purged']} purged; integrity ok"
    if not audit.ok:
        return Finding(
            "queue",
            "fail",
            f"audit chain broken at entry #{audit.first_bad_seq}: {audit.problem}",
            "The station's history was altered: stop using it and call the support desk.",
        )
    age = queue.oldest_pending_age_s
    if age is not None and age > 3 * 86_400:
        days = int(age // 86_400)
        return Finding(
            "queue",
            "warn",
            f"{detail}; the oldest unsent packet is {days} days old",
            "Check the network and run 'station sync once' to see why uploads fail.",
        )
    return Finding("queue", "ok", f"{detail}; audit chain ok ({audit.entries} entries)")


DEFAULT_CHECKS: list[Check] = [
    check_config,
    check_disk,
    check_clock,
    check_keys,
    check_store,
    check_certificate,
    check_scanner,
    check_camera,
    check_central_reachable,
]


def run_checks(ctx: DoctorContext, checks: list[Check] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for check in checks if checks is not None else DEFAULT_CHECKS:
        try:
            findings.append(check(ctx))
        except Exception as exc:  # a doctor reports; it does not crash
            name = check.__name__.removeprefix("check_")
            detail = exc.message if isinstance(exc, StationError) else f"{type(exc).__name__}: {exc}"
            findings.append(Finding(name, "fail", detail, "See the message; run station doctor again after."))
    return findings
