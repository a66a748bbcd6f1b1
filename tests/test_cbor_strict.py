"""The strict CBOR reader: what our encoder writes comes back, everything else is a typed refusal.

The attacks of the security review are rebuilt byte by byte: a value-sharing DAG (tags 28/29) used
as a header map key, an 8 MiB envelope of empty arrays, a container that declares 2^32 items.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packetformat.cbor import CborError, Limits, Reader, canonical_key_order, decode
from packetformat.packet import PacketError, generate_recipient_keypair, open_packet, parse, seal
from sync.common.receipt import ReceiptError, decode_receipt
from tests.hostile_cbor import dag_envelope, dag_map, empty_arrays, sealed_plaintext, shared_dag

LIMITS = Limits(max_bytes=1 << 20)

values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)


@given(values)
@settings(max_examples=400, deadline=None)
def test_what_the_canonical_encoder_writes_reads_back(value: Any) -> None:
    assert decode(cbor2.dumps(value, canonical=True), LIMITS) == value


@given(st.binary(max_size=300))
@settings(max_examples=3000, deadline=None)
def test_random_bytes_raise_only_cbor_errors(data: bytes) -> None:
    try:
        decode(data, LIMITS)
    except CborError as exc:
        assert exc.code.startswith("cbor.")


@given(values, st.data())
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_documents_raise_only_cbor_errors(value: Any, data: st.DataObject) -> None:
    raw = bytearray(cbor2.dumps(value, canonical=True))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        at = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "insert":
            raw.insert(at, data.draw(st.integers(0, 255)))
        elif raw:
            del raw[at]
    with contextlib.suppress(CborError):
        decode(bytes(raw), LIMITS)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\xc2\x41\x01", "cbor.tag"),  # bignum
        (b"\xd9\xd9\xf7\x80", "cbor.tag"),  # self-describe prefix
        (b"\xd8\x1c\x80", "cbor.tag"),  # shareable
        (b"\xd8\x1d\x00", "cbor.tag"),  # shared reference
        (b"\x9f\xff", "cbor.indefinite"),
        (b"\x5f\x41\x00\xff", "cbor.indefinite"),
        (b"\xbf\xff", "cbor.indefinite"),
        (b"\xf9\x3c\x00", "cbor.type"),  # half float 1.0
        (b"\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00", "cbor.type"),
        (b"\xf7", "cbor.type"),  # undefined
        (b"\xf0", "cbor.type"),  # simple(16)
        (b"\x18\x05", "cbor.non_canonical"),
        (b"\x19\x00\x10", "cbor.non_canonical"),
        (b"\x58\x01\x00", "cbor.non_canonical"),  # a 1-byte string with a 1-byte length
        (b"\xa2\x61b\x01\x61a\x02", "cbor.non_canonical"),  # keys out of order
        (b"\xa2\x62aa\x01\x61b\x02", "cbor.non_canonical"),  # longer key first
        (b"\xa2\x61a\x01\x61a\x02", "cbor.duplicate_key"),
        (b"\xa1\x01\x02", "cbor.shape"),  # integer key
        (b"\xa1\x41a\x02", "cbor.shape"),  # byte-string key
        (b"\x62\xc3\x28", "cbor.utf8"),
        (b"\x1c", "cbor.malformed"),
        (b"\x01\x02", "cbor.trailing"),
        (b"", "cbor.truncated"),
        (b"\x82\x01", "cbor.truncated"),
        (b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", "cbor.truncated"),  # 2^64-1 items declared, none sent
        (b"\x5a\xff\xff\xff\xff", "cbor.string"),
    ],
)
def test_what_the_formats_never_use_is_refused(data: bytes, code: str) -> None:
    with pytest.raises(CborError) as info:
        decode(data, Limits(max_bytes=1 << 20, max_string=1 << 16))
    assert info.value.code == code


def test_depth_items_and_size_are_bounded_while_reading() -> None:
    deep = b"\x81" * 17 + b"\x00"
    with pytest.raises(CborError) as info:
        decode(deep, Limits(max_bytes=100, max_depth=16))
    assert info.value.code == "cbor.depth"
    assert decode(b"\x81" * 16 + b"\x00", Limits(max_bytes=100, max_depth=16)) is not None
    many = cbor2.dumps(list(range(20)))
    with pytest.raises(CborError) as info:
        decode(many, Limits(max_bytes=100, max_items=10))
    assert info.value.code == "cbor.items" and info.value.offset < len(many)
    with pytest.raises(CborError) as info:
        decode(bytes(101), Limits(max_bytes=100))
    assert info.value.code == "cbor.size"


def test_the_shared_reference_dag_envelope_is_refused_at_once() -> None:
    envelope = dag_envelope()
    assert len(envelope) < 400
    start = time.perf_counter()
    with pytest.raises(PacketError) as info:
        parse(envelope)
    assert time.perf_counter() - start < 1.0  # measured: tens of microseconds; cbor2 took seconds
    assert info.value.code == "packet.cbor.shape"
    with pytest.raises(CborError) as cinfo:  # and as a free-form document
        decode(shared_dag(40), LIMITS)
    assert cinfo.value.code == "cbor.tag"
    with pytest.raises(CborError) as cinfo:  # as a map key it is not even a text string
        decode(dag_map(40), LIMITS)
    assert cinfo.value.code == "cbor.shape"


def test_an_eight_mib_envelope_of_empty_arrays_costs_nothing() -> None:
    envelope = empty_arrays()
    start = time.perf_counter()
    with pytest.raises(PacketError) as pinfo:
        parse(envelope)
    assert pinfo.value.code == "packet.cbor.shape"  # the first byte is not a 4-element array
    assert time.perf_counter() - start < 3.0
    # the same bytes as a document: refused once the item budget is spent, not after building it
    start = time.perf_counter()
    with pytest.raises(CborError) as info:
        decode(envelope, Limits(max_bytes=len(envelope), max_items=65536))
    assert info.value.code == "cbor.items" and info.value.offset == 5 + 65535  # stopped at the budget
    assert time.perf_counter() - start < 3.0


def test_a_sealed_document_with_a_dag_cannot_be_opened() -> None:
    """The ``central open`` variant: ingest cannot see inside, so opening must refuse it at once."""
    station = ec.generate_private_key(ec.SECP256R1())
    private, public = generate_recipient_keypair()
    good = seal({"x": 1}, station_id="st-1", identity_key=station, recipient_public_key=public)
    assert open_packet(good.envelope, private, station.public_key()) == {"x": 1}
    _, envelope = sealed_plaintext(
        b"\xa1\x61x" + shared_dag(30), station_id="st-1", identity_key=station, recipient_public_key=public
    )
    assert parse(envelope).header.station_id == "st-1"  # what ingest sees is fine
    assert len(envelope) < 600
    start = time.perf_counter()
    with pytest.raises(PacketError) as info:
        open_packet(envelope, private, station.public_key())
    assert info.value.code == "packet.cbor.tag"
    assert time.perf_counter() - start < 2.0


def test_fixed_shape_reader_reads_only_its_layout() -> None:
    order = canonical_key_order(["station_id", "v", "created_at", "suite"])
    assert order == ("v", "suite", "created_at", "station_id")
    doc = cbor2.dumps({"v": 1, "suite": "x", "created_at": 5, "station_id": "s"}, canonical=True)
    r = Reader(doc, Limits(max_bytes=100))
    r.map(4)
    r.key("v")
    assert r.uint("v") == 1
    r.key("suite")
    assert r.text("suite", 8) == "x"
    r.key("created_at")
    with pytest.raises(CborError) as info:
        r.text("created_at", 8)
    assert info.value.code == "cbor.shape"


def test_receipts_use_the_same_reader() -> None:
    with pytest.raises(ReceiptError, match="tags"):
        decode_receipt(b"\x83\x01\xd8\x1c\x40\x40")
    with pytest.raises(ReceiptError, match="indefinite"):
        decode_receipt(b"\x9f\x01\x40\x40\xff")


def test_signed_policy_documents_use_the_same_reader() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from station.policy.model import PolicyError
    from station.policy.signed import POLICY_BUNDLE, open_document, sign_document

    key = ed25519.Ed25519PrivateKey.generate()
    good = sign_document(POLICY_BUNDLE, {"v": 1}, key)
    assert open_document(POLICY_BUNDLE, good, key.public_key()) == {"v": 1}
    for hostile in (
        b"\x83"
        + cbor2.dumps(POLICY_BUNDLE)
        + shared_dag(40)
        + cbor2.dumps(bytes(64)),  # before the signature
        b"\x83" + cbor2.dumps(POLICY_BUNDLE) + b"\x5f\x41\x00\xff" + cbor2.dumps(bytes(64)),
    ):
        start = time.perf_counter()
        with pytest.raises(PolicyError) as info:
            open_document(POLICY_BUNDLE, hostile, key.public_key())
        assert info.value.code == "policy.malformed"
        assert time.perf_counter() - start < 1.0
