"""Fuzz targets: one function per parser that reads untrusted bytes, and the errors it may raise.

Each target takes the fuzzer's bytes, feeds them to the project's real parser the way the project
does (same limits, same follow-up checks), and lets every exception through. :func:`check` then
tells the typed errors of that parser (the ones its callers catch and turn into a message with a
code) from anything else: any other exception is a crash. ``tests/fuzz/run.py`` drives these
under atheris; ``tests/test_fuzz_replay.py`` replays the corpus and every saved crash.

Keys the targets need (a station identity key, central's receipt and policy keys, an HPKE
recipient key) are derived at import from fixed numbers, never read from a file: the seed corpus
(``tests/fuzz/make_corpus.py``) is made with the same keys, so the signature and decryption paths
are reached by the seeds, and every mutation of a signed byte lands on the refusal path.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from drivers.errors import ProtocolError
from drivers.nb1010 import protocol as nb
from drivers.r30x import protocol as r30x
from packetformat import packet
from packetformat.cbor import CborError, Limits, decode
from station.enrollment.files import load_enrollment
from station.errors import StationError
from station.outcomes import parse_outcomes
from station.policy.bundle import open_bundle, read_stored_bundle
from station.policy.model import PolicyError
from station.policy.parse import policy_from_document
from station.policy.signed import MAX_DEPTH, MAX_SIGNED_BYTES, OUTCOMES, open_document, read_unverified
from sync.central.export.ansi_nist_reader import describe, read_transaction
from sync.central.export.errors import ReadError
from sync.central.export.iso19794 import read_face_record, read_finger_record
from sync.central.policy import check_outcome
from sync.central.server import json_body
from sync.common.receipt import ReceiptError, decode_receipt, verify_receipt
from sync.common.wire import Heartbeat, UploadStatus
from sync.pki.ca import PKIError
from sync.pki.issue import check_station_csr, load_csr
from tests.fuzz.images import write_images

# -- fixed test keys (derived, never stored) ---------------------------------------------------------

STATION_ID = "uc-fuzz-0001-01"
STATION_KEY = ec.derive_private_key(0x5EED_0001, ec.SECP256R1())
RECEIPT_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fuzz receipt key").digest())
POLICY_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fuzz policy key").digest())
HPKE_PRIVATE = hashlib.sha256(b"fuzz hpke key").digest()
HPKE_PUBLIC = (
    x25519.X25519PrivateKey.from_private_bytes(HPKE_PRIVATE)
    .public_key()
    .public_bytes(Encoding.Raw, PublicFormat.Raw)
)


# -- the targets ------------------------------------------------------------------------------------


def packet_envelope(data: bytes) -> None:
    """Central's intake: parse, verify with the station's key, then decrypt and decode the document."""
    packet.parse(data)
    packet.open_packet(data, HPKE_PRIVATE, STATION_KEY.public_key())


def packet_document(data: bytes) -> None:
    """The strict CBOR reader on a decrypted document, with the packet's document limits."""
    decode(data, Limits(max_bytes=packet.MAX_PACKET_BYTES, **packet.DOCUMENT_LIMITS))


def receipt(data: bytes) -> None:
    """The agent's receipt check: decode, then verify with central's receipt key."""
    decode_receipt(data)
    verify_receipt(data, RECEIPT_KEY.public_key())


def r30x_frames(data: bytes) -> None:
    """The serial stream parser fed in uneven chunks, then one-shot parsing and payload readers."""
    parser = r30x.StreamParser()
    step = 1 + (data[0] % 31) if data else 1
    for start in range(0, len(data), step):
        parser.feed(data[start : start + step])
        for _ in range(len(data) + 1):  # bounded: each turn consumes at least one byte or stops
            try:
                found = parser.next_packet()
            except ProtocolError:
                continue
            if found is None:
                break
            if found.type == r30x.PacketType.ACK and len(found.payload) == 17:
                r30x.SysParams.from_bytes(found.payload[1:])
    r30x.parse_packet(data)


def nb1010_frames(data: bytes) -> None:
    """The NB-1010-U reader: a 16-byte reply (finger detect, ack), then 540-byte image blocks."""
    reply, blocks = data[: nb.REPLY_LEN], data[nb.REPLY_LEN :]
    with contextlib.suppress(ProtocolError):
        nb.finger_present(reply)
    with contextlib.suppress(ProtocolError):
        nb.check_ack(reply, command=nb.CMD_CAPTURE)
    assembler = nb.FrameAssembler()
    for start in range(0, len(blocks), nb.PARTIAL_LEN):
        try:
            assembler.add(blocks[start : start + nb.PARTIAL_LEN])
        except ProtocolError:
            continue
    assembler.frame()


_ENROLLMENT_DIR: Path | None = None


def enrollment_dir() -> Path:
    """A folder with real images beside the fuzzed enrollment.json (made once per process)."""
    global _ENROLLMENT_DIR
    if _ENROLLMENT_DIR is None:
        folder = Path(tempfile.mkdtemp(prefix="fuzz-enrollment-"))
        write_images(folder)
        _ENROLLMENT_DIR = folder
    return _ENROLLMENT_DIR


def enrollment_json(data: bytes) -> None:
    """``station enroll --from-json``: the bytes are enrollment.json in a folder of real images."""
    folder = enrollment_dir()
    path = folder / "enrollment.json"
    path.write_bytes(data)
    load_enrollment(path, station_id=STATION_ID)


def central_json(data: bytes) -> None:
    """Every JSON body central accepts, through the same checks its handlers apply.

    ``json_body`` is the server's body decoder; then the shapes of ``/v1/enroll`` (whose CSR is
    parsed and checked), ``/v1/renew``, ``finalise`` and ``/v1/heartbeat``, and the agent's reading
    of central's upload status.
    """
    body = json_body(data)
    if body is None:
        return
    if all(isinstance(body.get(k), str) for k in ("token", "station_id", "csr_pem")):
        check_station_csr(load_csr(body["csr_pem"]), body["station_id"])
    if isinstance(body.get("sha256"), str) and type(body.get("size")) is int:
        body["sha256"].lower()
    if not set(body) - {"outcome", "reason", "note"} and "outcome" in body:  # POST .../outcome
        with contextlib.suppress(ValueError):
            check_outcome(body.get("outcome"), body.get("reason", ""), body.get("note", ""))
    for reader in (Heartbeat.from_json, UploadStatus.from_json):
        with contextlib.suppress(ValueError):  # the handler answers 400 with its message
            reader(body)


def policy_bundle(data: bytes) -> None:
    """The policy bundle: checked against the pinned key, and read back as the station stores it."""
    with contextlib.suppress(PolicyError):
        open_bundle(data, POLICY_KEY.public_key(), station_id=STATION_ID)
    read_stored_bundle(data)


def policy_document(data: bytes) -> None:
    """The policy rules themselves (``policy_from_document``) on any strict CBOR map."""
    try:
        document: Any = decode(data, Limits(max_bytes=MAX_SIGNED_BYTES, max_depth=MAX_DEPTH + 1))
    except CborError:
        return
    policy_from_document(document)


def outcomes(data: bytes) -> None:
    """The outcome list: checked against the pinned key, and its entries read as stored."""
    with contextlib.suppress(PolicyError):
        parse_outcomes(open_document(OUTCOMES, data, POLICY_KEY.public_key()), station_id=STATION_ID)
    parse_outcomes(read_unverified(OUTCOMES, data), station_id=STATION_ID)


def ansi_nist(data: bytes) -> None:
    """The ANSI/NIST-ITL reader (``central export`` checks every file it writes with it)."""
    describe(read_transaction(data))


def iso19794_finger(data: bytes) -> None:
    read_finger_record(data)


def iso19794_face(data: bytes) -> None:
    read_face_record(data)


@dataclass(frozen=True)
class Target:
    run: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...]  # the parser's typed errors: anything else is a crash
    max_len: int  # the longest input the fuzzer makes (-max_len)


TARGETS: dict[str, Target] = {
    "packet": Target(packet_envelope, (packet.PacketError,), 16384),
    "packet_document": Target(packet_document, (CborError,), 16384),
    "receipt": Target(receipt, (ReceiptError,), 1024),
    "r30x": Target(r30x_frames, (ProtocolError,), 4096),
    "nb1010": Target(nb1010_frames, (ProtocolError,), 16 + 8 * nb.PARTIAL_LEN),
    "enrollment": Target(enrollment_json, (StationError,), 8192),
    "central_json": Target(central_json, (PKIError,), 8192),
    "policy": Target(policy_bundle, (PolicyError,), 8192),
    "policy_document": Target(policy_document, (PolicyError,), 8192),
    "outcomes": Target(outcomes, (PolicyError,), 8192),
    "ansi_nist": Target(ansi_nist, (ReadError,), 16384),
    "iso19794_finger": Target(iso19794_finger, (ReadError,), 16384),
    "iso19794_face": Target(iso19794_face, (ReadError,), 16384),
}


def check(name: str, data: bytes) -> None:
    """Run target ``name`` on ``data``; its typed errors are fine, any other exception propagates."""
    target = TARGETS[name]
    with contextlib.suppress(target.allowed):
        target.run(data)
