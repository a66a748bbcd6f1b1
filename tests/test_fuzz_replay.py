"""Every fuzz seed and every saved crash input, replayed through its target in-process.

The seeds (``tests/fuzz/corpus/<target>/``, made by ``tests/fuzz/make_corpus.py``) must reach each
parser's success path where they should; each file under ``tests/fuzz/regressions/<target>/`` is an
input the fuzzer once crashed a parser with, kept so the fix stays: it must now end in the target's
typed error (or be accepted), and in well under the 1 s per-input budget.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from packetformat.packet import PacketError
from tests.fuzz import targets
from tests.fuzz.targets import TARGETS, check

FUZZ = Path(__file__).parent / "fuzz"


def _inputs(kind: str) -> list[tuple[str, Path]]:
    return sorted(
        (folder.name, path)
        for folder in (FUZZ / kind).iterdir()
        if folder.is_dir()
        for path in folder.iterdir()
        if path.is_file()
    )


CORPUS = _inputs("corpus")
REGRESSIONS = _inputs("regressions")


def test_every_target_has_seeds() -> None:
    assert {name for name, _ in CORPUS} == set(TARGETS)
    total = sum(path.stat().st_size for _, path in CORPUS)
    assert total < 200_000, "keep the committed corpus small"


@pytest.mark.parametrize(("target", "path"), CORPUS + REGRESSIONS, ids=lambda v: getattr(v, "name", v))
def test_replay(target: str, path: Path) -> None:
    data = path.read_bytes()
    if target == "enrollment":
        targets.enrollment_dir()  # the images, made once: not charged to the input
        check(target, data)  # NFIQ 2 loads its model on first use
    start = time.monotonic()
    check(target, data)
    assert time.monotonic() - start < 1.0


def test_seeds_reach_the_success_paths() -> None:
    """The fixed fuzz keys open the sealed seed and verify the receipt: the corpus is not just noise."""
    corpus = FUZZ / "corpus"
    envelope = (corpus / "packet" / "brief.packet").read_bytes()
    from packetformat.packet import open_packet
    from station.policy.bundle import open_bundle
    from sync.central.export.ansi_nist_reader import read_transaction
    from sync.common.receipt import verify_receipt

    assert open_packet(envelope, targets.HPKE_PRIVATE, targets.STATION_KEY.public_key())["operator_id"]
    assert verify_receipt(
        (corpus / "receipt" / "receipt.cbor").read_bytes(), targets.RECEIPT_KEY.public_key()
    )
    bundle = open_bundle(
        (corpus / "policy" / "bundle.cbor").read_bytes(),
        targets.POLICY_KEY.public_key(),
        station_id=targets.STATION_ID,
    )
    assert bundle.policy.version == 1
    assert len(read_transaction((corpus / "ansi_nist" / "small.an2").read_bytes()).records) >= 3
    with pytest.raises(PacketError):
        check_strict = TARGETS["packet"].run
        check_strict(envelope[:-1])


def test_a_foreign_exception_is_a_crash() -> None:
    """``check`` lets through anything that is not the target's typed error."""
    with pytest.raises(TypeError):
        check("r30x", "not bytes")  # type: ignore[arg-type]
