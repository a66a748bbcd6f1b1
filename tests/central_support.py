"""Helpers for the central tests: a real ``central serve`` subprocess, real certificates, packets.

Nothing here is a fake: the server is the console command in its own process, certificates are
issued by the home's own CA, packets are sealed with ``packetformat.packet.seal``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from packetformat.packet import PacketHeader, _signed_bytes, parse, seal
from sync.central.authority import Authority, init_home
from sync.central.home import CentralHome
from sync.common.wire import HEADER_CHUNK_SHA256, HEADER_PACKET_SIZE, finalise_path, packet_path
from sync.pki.ca import CA, cert_pem, create_ca, issue_leaf, key_pem, load_ca, new_ec_key

REPO = Path(__file__).resolve().parent.parent
# Where test stations stand, for 'central token new' (a station new to the registry needs it).
TEST_LOCATION = ("--district", "Lahore", "--tehsil", "Lahore City", "--union-council", "UC-1")
FACE = b"\xff\xd8" + bytes(300)
DOC: dict[str, Any] = {
    "demographics": {"name_en": "Test Person", "cnic": "35202-1234567-1"},
    "images": {"face": {"jpeg": FACE, "sha256": hashlib.sha256(FACE).hexdigest()}},
    "operator_id": "op-1",
}


def make_home(root: Path, **kwargs: Any) -> CentralHome:
    home = CentralHome(root)
    init_home(home, **kwargs)
    return home


def csr_for(key: ec.EllipticCurvePrivateKey, station_id: str, *, san: str | None = None) -> str:
    uri = san if san is not None else f"urn:station:{station_id}"
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, station_id)]))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Client:
    """A TLS identity on disk: key, certificate, and the CA to trust."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    key_path: Path
    cert_path: Path
    station_id: str

    def context(self, ca_path: Path) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(ca_path))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        return ctx


def write_identity(
    tmp: Path, name: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, station_id: str = ""
) -> Client:
    tmp.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = tmp / f"{name}.key", tmp / f"{name}.crt"
    key_path.write_bytes(key_pem(key))
    cert_path.write_bytes(cert_pem(cert))
    return Client(key, cert, key_path, cert_path, station_id)


def station_client(home: CentralHome, tmp: Path, station_id: str, *, days: float | None = None) -> Client:
    key = new_ec_key()
    cert = Authority(home).issue_from_csr(csr_for(key, station_id), station_id, days=days)
    return write_identity(tmp, station_id, key, cert, station_id)


def raw_leaf(
    ca: CA,
    tmp: Path,
    name: str,
    *,
    uri: str,
    eku: list[x509.ObjectIdentifier] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Client:
    key = new_ec_key()
    cert = issue_leaf(
        ca,
        key.public_key(),
        common_name=name,
        sans=[x509.UniformResourceIdentifier(uri)],
        eku=eku or [ExtendedKeyUsageOID.CLIENT_AUTH],
        not_before=not_before,
        not_after=not_after,
    )
    return write_identity(tmp, name, key, cert, uri.rsplit(":", 1)[-1])


def home_ca(home: CentralHome) -> CA:
    return load_ca(home.ca_key, home.ca_cert)


def other_ca() -> CA:
    return create_ca("Some Other CA")


def hpke_public(home: CentralHome) -> bytes:
    return Authority(home).hpke_public()[0]


def sealed(
    home: CentralHome,
    client: Client,
    *,
    station_id: str | None = None,
    doc: dict[str, Any] | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    return seal(
        DOC if doc is None else doc,
        station_id=station_id or client.station_id,
        identity_key=key or client.key,
        recipient_public_key=hpke_public(home),
    ).envelope


def resigned_with_id(envelope: bytes, packet_id: str, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The same ciphertext under another packet id, correctly signed by ``key``."""
    env = parse(envelope)
    h = env.header
    header = PacketHeader(
        h.version, packet_id, h.station_id, h.created_at, h.suite, h.ct_len, h.summary
    ).to_cbor()
    sig = key.sign(_signed_bytes(header, env.ciphertext), ec.ECDSA(hashes.SHA256()))
    return cbor2.dumps([h.version, header, env.ciphertext, sig], canonical=True)


def put_chunk(
    http: httpx.Client, base: str, pid: str, offset: int, chunk: bytes, total: int, digest: str | None = None
) -> httpx.Response:
    return http.put(
        f"{base}{packet_path(pid)}",
        params={"offset": offset},
        content=chunk,
        headers={
            HEADER_CHUNK_SHA256: digest or hashlib.sha256(chunk).hexdigest(),
            HEADER_PACKET_SIZE: str(total),
        },
    )


def finalise(http: httpx.Client, base: str, pid: str, envelope: bytes) -> httpx.Response:
    return http.post(
        f"{base}{finalise_path(pid)}",
        json={"sha256": hashlib.sha256(envelope).hexdigest(), "size": len(envelope)},
    )


def upload(http: httpx.Client, base: str, envelope: bytes, *, chunk: int = 4096) -> httpx.Response:
    """Resumable upload the way the agent does it: ask the offset, send chunks, finalise."""
    pid = parse(envelope).header.packet_id
    status = http.get(f"{base}{packet_path(pid)}").json()
    offset = int(status["offset"]) if not status["complete"] else len(envelope)
    for _ in range(len(envelope) // chunk + 2):
        if offset >= len(envelope):
            break
        r = put_chunk(http, base, pid, offset, envelope[offset : offset + chunk], len(envelope))
        if r.status_code != 200:
            return r
        offset = int(r.json()["offset"])
    return finalise(http, base, pid, envelope)


_LOW_NOFILE = (
    "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({0}, {0})); "
    "sys.argv = sys.argv[1:]; runpy.run_module('sync.central', run_name='__main__', alter_sys=True)"
)


class CentralProcess:
    """``central serve`` in a subprocess on an ephemeral loopback port."""

    def __init__(
        self,
        home: CentralHome,
        *extra: str,
        env_extra: dict[str, str] | None = None,
        max_files: int | None = None,
    ) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
        # max_files: run under that RLIMIT_NOFILE (soft and hard), as on a host with a low limit
        launcher = (
            [sys.executable, "-m", "sync.central"]
            if max_files is None
            else [sys.executable, "-c", _LOW_NOFILE.format(max_files), "sync.central"]
        )
        self.proc = subprocess.Popen(
            [
                *launcher,
                "--home",
                str(home.root),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--enroll-port",
                "0",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, daemon=True).start()
        self.enroll_url = ""
        self.url = ""
        while not self.url:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                self.stop()
                raise RuntimeError("central serve did not start within 30 s") from None
            if line == "":
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"central serve exited: {err}")
            if line.startswith("enrollment on "):
                self.enroll_url = line.split()[-1]
            if line.startswith("listening on "):
                self.url = line.split()[-1]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def running(home: CentralHome, *extra: str) -> Iterator[CentralProcess]:
    server = CentralProcess(home, *extra)
    try:
        yield server
    finally:
        server.stop()


def http_client(client: Client | None, home: CentralHome) -> httpx.Client:
    if client is None:
        ctx = ssl.create_default_context(cafile=str(home.ca_cert))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx = client.context(home.ca_cert)
    return httpx.Client(verify=ctx, timeout=20)


def refused(client: Client | None, home: CentralHome, url: str) -> bool:
    """True when the server refuses this identity in TLS (no HTTP answer at all)."""
    with http_client(client, home) as http:
        try:
            http.get(url)
        except httpx.TransportError:
            return True
    return False
