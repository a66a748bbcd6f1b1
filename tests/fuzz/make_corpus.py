"""Write the seed corpus of every fuzz target from real samples made by the project's own code.

``python -m tests.fuzz.make_corpus [--out tests/fuzz/corpus]``: a small enrollment (the example's
synthetic citizen, prints and portrait at reduced size) sealed into a packet with the fixed fuzz
keys of ``tests.fuzz.targets``, its plaintext document, a receipt central would sign for it, R30x
frames from the protocol encoder and from the simulator on a pty, NB-1010 transfers from the
umockdev recording in tests/fixtures/usb, the example enrollment.json (and one naming only the
images the fuzz folder holds), the JSON bodies central accepts (a real heartbeat, an enrollment with
a real CSR, a renewal, a finalise, an upload status), the built-in policy in a signed bundle, and
the ANSI/NIST-ITL and ISO 19794 files the exporter writes for that enrollment. No real person's
data: the example citizen is fictitious. Deterministic apart from times, packet ids and signatures.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import select
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from drivers.r30x import protocol as r30x
from drivers.r30x.simulator import R30xSimulator
from packetformat.packet import parse, seal
from station.enrollment.example import write_example
from station.enrollment.files import load_enrollment
from station.policy.bundle import Bundle, sign_bundle
from station.policy.default import BUILTIN
from station.policy.signed import OUTCOMES, sign_document
from sync.central.export import iso19794
from sync.central.export.batch import render
from sync.central.export.document import read_view
from sync.common.receipt import Receipt, sign_receipt, utc_now_iso
from sync.common.wire import Heartbeat, UploadStatus, b64e
from tests.fuzz import targets
from tests.fuzz.images import write_images
from tests.nb1010_replay import load_transfers

CORPUS = Path(__file__).parent / "corpus"
CENTRAL_ID = "central-fuzz"


def small_enrollment_json(example: dict[str, Any]) -> dict[str, Any]:
    """The example enrollment naming only the images of :func:`write_images`."""
    return {
        "operator_id": example["operator_id"],
        "demographics": example["demographics"],
        "face": "face.jpg",
        "face_checks": {"eyes": [[40, 60], [80, 60]]},
        "fingers": {
            "1": {"image": "finger-01.png", "attempts": 1},
            "right_index": {"image": "finger-02.wsq"},
            "6": {"image": "finger-06.png", "ppi": 500, "attempts": 2},
            "7": {"exception": "injured", "note": "bandaged"},
        },
    }


def enrollment_seeds(work: Path) -> tuple[dict[str, bytes], dict[str, Any]]:
    """(the enrollment target's seeds, the small enrollment's packet document)."""
    example_dir = work / "example"
    example_path = write_example(example_dir)
    example = json.loads(example_path.read_text(encoding="utf-8"))
    folder = work / "images"
    write_images(folder)
    small = json.dumps(small_enrollment_json(example), ensure_ascii=False, indent=2).encode()
    (folder / "enrollment.json").write_bytes(small)
    enrollment = load_enrollment(folder / "enrollment.json", station_id=targets.STATION_ID)
    seeds = {"example.json": example_path.read_bytes(), "small.json": small}
    return seeds, enrollment.to_document()


def packet_seeds(document: dict[str, Any]) -> tuple[dict[str, bytes], dict[str, bytes], dict[str, Any]]:
    """(packet seeds, plaintext document seeds, the packet's meta for the exporter)."""
    brief = {k: v for k, v in document.items() if k not in ("fingers", "face")}
    envelopes: dict[str, bytes] = {}
    meta: dict[str, Any] = {}
    for name, doc in (("brief", brief), ("full", document)):
        sealed = seal(
            doc,
            station_id=targets.STATION_ID,
            identity_key=targets.STATION_KEY,
            recipient_public_key=targets.HPKE_PUBLIC,
        )
        envelopes[f"{name}.packet"] = sealed.envelope
        header = parse(sealed.envelope).header
        meta = {
            "packet_id": header.packet_id,
            "station_id": header.station_id,
            "created_at": header.created_at,
        }
    plain = {
        "brief.cbor": cbor2.dumps(brief, canonical=True),
        "full.cbor": cbor2.dumps(document, canonical=True),
    }
    return envelopes, plain, meta


def receipt_seeds(envelope: bytes, packet_id: str) -> dict[str, bytes]:
    sha = hashlib.sha256(envelope).hexdigest()
    receipt = Receipt(packet_id, targets.STATION_ID, sha, len(envelope), utc_now_iso(), CENTRAL_ID)
    return {"receipt.cbor": sign_receipt(receipt, targets.RECEIPT_KEY)}


def _read_for(fd: int, deadline: float) -> bytes:
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        data += os.read(fd, 4096)
    return data


def r30x_seeds() -> dict[str, bytes]:
    """Frames from the encoder, and what the simulator answers on its pty to a short session."""
    commands = [
        r30x.build_command(r30x.Instruction.VFY_PWD, (0).to_bytes(4, "big")),
        r30x.build_command(r30x.Instruction.READ_SYS_PARA),
        r30x.build_command(r30x.Instruction.TEMPLATE_NUM),
        r30x.build_command(r30x.Instruction.GEN_IMG),
    ]
    seeds = {"commands.bin": b"".join(commands)}
    seeds["data.bin"] = b"".join(
        r30x.build_packet(kind, chunk) for kind, chunk in r30x.split_data(bytes(range(256)) * 2, 128)
    )
    with R30xSimulator() as sim:
        import serial  # the station's serial library, as the driver opens the port

        with serial.Serial(sim.port, 57600, timeout=0) as port:
            answers = b""
            for command in commands:
                port.write(command)
                answers += _read_for(port.fileno(), time.monotonic() + 0.5)
    seeds["simulator-answers.bin"] = answers
    return seeds


def nb1010_seeds() -> dict[str, bytes]:
    """The recorded reply to finger detect, the capture acknowledgement, then image blocks."""
    incoming = [t.data for t in load_transfers() if t.endpoint == 0x83]
    replies = [d for d in incoming if len(d) == 16]
    partials = [d for d in incoming if len(d) == 540]
    return {
        "detect-and-blocks.bin": replies[0] + b"".join(partials[:3]),
        "ack-and-blocks.bin": replies[-1] + b"".join(partials[-2:]),
    }


def central_json_seeds() -> dict[str, bytes]:
    key = targets.STATION_KEY
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, targets.STATION_ID)]))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:station:{targets.STATION_ID}")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    heartbeat = Heartbeat(
        station_id=targets.STATION_ID,
        sent_at=utc_now_iso(),
        counts={"pending": 2, "uploaded": 10},
        oldest_pending_age_s=12.5,
        last_sync_at=utc_now_iso(),
        disk_free_bytes=12_000_000_000,
        devices={"fingerprint": "r30x ok", "camera": "ok"},
        version="0.1.0",
        cert_not_after=utc_now_iso(),
        audit_head="ab" * 32,
        audit_seq=42,
    )
    bodies: dict[str, Any] = {
        "heartbeat.json": heartbeat.to_json(),
        "enroll.json": {"token": "tok-" + "a" * 20, "station_id": targets.STATION_ID, "csr_pem": csr},
        "renew.json": {"csr_pem": csr},
        "finalise.json": {"sha256": "AB" * 32, "size": 4096},
        "upload-status.json": UploadStatus(4096, True, b64e(b"receipt")).to_json(),
        "outcome.json": {"outcome": "re-enroll", "reason": "finger_quality", "note": "finger 3 smudged"},
    }
    return {name: json.dumps(body).encode() for name, body in bodies.items()}


def policy_seeds() -> tuple[dict[str, bytes], dict[str, bytes]]:
    policy = dataclasses.replace(BUILTIN, version=1)
    bundle = Bundle(
        targets.STATION_ID, int(time.time()), policy, 3, {"op-demo": "allowed", "op-old": "disabled"}
    )
    signed = sign_bundle(bundle, targets.POLICY_KEY)
    return {"bundle.cbor": signed}, {"builtin.cbor": cbor2.dumps(BUILTIN.to_document(), canonical=True)}


def outcome_seeds(packet_id: str) -> dict[str, bytes]:
    """An outcome list as central signs it: one re-enrollment and one acceptance."""
    entry = {"packet_id": packet_id, "note": "", "decided_at": utc_now_iso()}
    document = {
        "station_id": targets.STATION_ID,
        "after": 0,
        "more": False,
        "outcomes": [
            {**entry, "seq": 1, "outcome": "re-enroll", "reason": "finger_quality"},
            {**entry, "seq": 2, "outcome": "accepted", "reason": ""},
        ],
    }
    return {"outcomes.cbor": sign_document(OUTCOMES, document, targets.POLICY_KEY)}


def export_seeds(document: dict[str, Any], meta: dict[str, Any]) -> dict[str, dict[str, bytes]]:
    view = read_view(document, meta, CENTRAL_ID)
    assert view.face is not None
    return {
        "ansi_nist": {"small.an2": render("ansi-nist", document, meta, CENTRAL_ID, "CNIC")},
        "iso19794_finger": {"fingers.fir": iso19794.finger_record(view.fingers)},
        "iso19794_face": {"face.fac": iso19794.face_record(view, view.face)},
    }


def write_corpus(out: Path, work: Path) -> dict[str, dict[str, bytes]]:
    enrollment, document = enrollment_seeds(work)
    envelopes, plain, meta = packet_seeds(document)
    policy, policy_doc = policy_seeds()
    corpus: dict[str, dict[str, bytes]] = {
        "packet": envelopes,
        "packet_document": plain,
        "receipt": receipt_seeds(envelopes["brief.packet"], str(meta["packet_id"])),
        "r30x": r30x_seeds(),
        "nb1010": nb1010_seeds(),
        "enrollment": enrollment,
        "central_json": central_json_seeds(),
        "policy": policy,
        "policy_document": policy_doc,
        "outcomes": outcome_seeds(str(meta["packet_id"])),
        **export_seeds(document, meta),
    }
    assert set(corpus) == set(targets.TARGETS), "every target needs seeds"
    for name, files in corpus.items():
        folder = out / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for filename, data in files.items():
            (folder / filename).write_bytes(data)
    return corpus


def main(argv: list[str] | None = None, *, log: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-corpus-") as work:
        corpus = write_corpus(args.out, Path(work))
    for name, files in sorted(corpus.items()):
        log(f"{name}: {len(files)} files, {sum(len(d) for d in files.values())} bytes")


if __name__ == "__main__":
    main()
