"""The station registry's rules: where a station stands, moving it, retiring it.

A station enters the registry when central issues its first enrollment token (``central token new
--station ID --district NAME --tehsil NAME --union-council NAME``). Moving changes its place and
nothing else. Retiring revokes every certificate of the station (the CRL refuses it at the TLS
handshake on every node), refuses new tokens and enrollments for that id, and takes it out of
every alert; its packets and receipts stay. A retired id is never reused: a replacement station
gets a new id.
"""

from __future__ import annotations

import time

from sync.central.authority import Authority
from sync.central.fleet import Location
from sync.central.home import CentralError
from sync.central.storage import Storage
from sync.common.wire import valid_station_id


def _check_id(station_id: str) -> None:
    if not valid_station_id(station_id):
        raise CentralError(
            f"{station_id!r} is not a station id: letters, digits, '.', '_' and '-' only (at most 64)",
            code="registry.bad_station_id",
        )


def retired_message(station_id: str) -> str:
    return (
        f"station {station_id} is retired: a retired id is not used again; "
        "register the replacement station under a new id"
    )


def prepare_token(
    storage: Storage, station_id: str, location: Location | None, *, now: float | None = None
) -> None:
    """Record where ``station_id`` stands before a token is issued for it.

    A station not yet in the registry needs its location; one that is may omit it (a new token
    after a repair) or give a new one. A retired station gets no token.
    """
    _check_id(station_id)
    t = time.time() if now is None else now
    state = storage.station_state(station_id)
    if state == "retired":
        raise CentralError(retired_message(station_id), code="registry.retired")
    if location is None:
        if state != "registered":
            raise CentralError(
                f"station {station_id} is not in the registry yet: give --district, --tehsil and "
                "--union-council (where the station stands)",
                code="registry.location_needed",
            )
        return
    storage.register_station(station_id, location, t)


def move(storage: Storage, station_id: str, location: Location, *, now: float | None = None) -> None:
    _check_id(station_id)
    state = storage.station_state(station_id)
    if state is None:
        raise CentralError(
            f"no station {station_id}: check the id with 'central station list'",
            code="registry.unknown_station",
        )
    if state == "retired":
        raise CentralError(retired_message(station_id), code="registry.retired")
    storage.move_station(station_id, location, time.time() if now is None else now)


def retire(
    storage: Storage, authority: Authority, station_id: str, reason: str, *, now: float | None = None
) -> int:
    """Revoke the station's certificates (new CRL) and mark it retired; returns certificates revoked."""
    _check_id(station_id)
    state = storage.station_state(station_id)
    if state is None:
        raise CentralError(
            f"no station {station_id}: check the id with 'central station list'",
            code="registry.unknown_station",
        )
    if state == "retired":
        raise CentralError(f"station {station_id} is already retired", code="registry.retired")
    t = time.time() if now is None else now
    revoked = authority.revoke(station_id)  # first: the CRL goes out even if what follows fails
    storage.retire_station(station_id, reason, t)
    return revoked
