"""Strict reading of a policy document (decoded JSON or CBOR) into a :class:`~station.policy.model.Policy`.

Every map must have exactly the keys the format names, every value its exact type (a bool is not an
int), every list and text is bounded. The first thing wrong raises :class:`PolicyError` naming where
it is (``kinds.juvenile.bands[1].to_age``), so a person fixing a policy file knows what to change.
Feasibility (can every citizen this policy admits be enrolled?) is
:func:`station.policy.rules.check_feasible`.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Any

from station.enrollment.model import ApplicationKind, FingerExceptionReason
from station.policy.model import (
    MAX_AGE,
    MAX_ITEMS,
    MAX_NAME,
    MAX_TEXT,
    POLICY_FORMAT,
    ROLES,
    SETTING_BOUNDS,
    AgeBand,
    KindRules,
    Modality,
    ModalityRules,
    Override,
    Place,
    Policy,
    PolicyError,
    Requirement,
    StationPlace,
    StationSettings,
    Text,
)

_MAX_VERSION = 2**53


def _fail(where: str, what: str) -> PolicyError:
    return PolicyError(f"The policy is not valid: {where} {what}. Correct the document and set it again.")


def _map(value: Any, where: str, keys: set[str], optional: AbstractSet[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "must be a map")
    have = set(value)
    if not all(isinstance(k, str) for k in have):
        raise _fail(where, "has a key that is not text")
    missing = keys - have
    extra = have - keys - optional
    if missing:
        raise _fail(where, f"lacks {', '.join(sorted(missing))}")
    if extra:
        raise _fail(where, f"has unknown field(s) {', '.join(sorted(extra)[:5])}")
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _fail(where, f"must be a whole number from {low} to {high}")
    return value


def _bool(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise _fail(where, "must be true or false")
    return value


def _text(value: Any, where: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _fail(where, f"must be a text of 1 to {limit} characters")
    if any(ord(c) < 32 and c not in "\n" for c in value) or "\u202e" in value:
        raise _fail(where, "holds control characters")
    return value


def _list(value: Any, where: str, limit: int = MAX_ITEMS) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise _fail(where, f"must be a list of at most {limit} items")
    return value


def _bilingual(value: Any, where: str, limit: int = MAX_TEXT) -> Text:
    m = _map(value, where, {"en", "ur"})
    return Text(_text(m["en"], f"{where}.en", limit), _text(m["ur"], f"{where}.ur", limit))


def _requirement(value: Any, where: str) -> Requirement:
    try:
        return Requirement(value) if isinstance(value, str) else Requirement("?")
    except ValueError:
        raise _fail(where, "must be one of required, optional, not_taken") from None


def _band(value: Any, where: str) -> AgeBand:
    m = _map(value, where, {"from_age", "to_age", "face", "fingers", "min_fingers", "iris"})
    from_age = _int(m["from_age"], f"{where}.from_age", 0, MAX_AGE)
    to_age = None if m["to_age"] is None else _int(m["to_age"], f"{where}.to_age", 1, MAX_AGE + 1)
    if to_age is not None and to_age <= from_age:
        raise _fail(f"{where}.to_age", "must be more than from_age")
    return AgeBand(
        from_age=from_age,
        to_age=to_age,
        face=_requirement(m["face"], f"{where}.face"),
        fingers=_requirement(m["fingers"], f"{where}.fingers"),
        min_fingers=_int(m["min_fingers"], f"{where}.min_fingers", 0, 10),
        iris=_requirement(m["iris"], f"{where}.iris"),
    )


def _kind(kind: ApplicationKind, value: Any, where: str) -> KindRules:
    m = _map(value, where, {"min_age", "max_age", "purpose", "consent", "bands"})
    bands = tuple(
        _band(b, f"{where}.bands[{i}]") for i, b in enumerate(_list(m["bands"], f"{where}.bands", 20))
    )
    return KindRules(
        kind=kind,
        min_age=_int(m["min_age"], f"{where}.min_age", 0, MAX_AGE),
        max_age=_int(m["max_age"], f"{where}.max_age", 0, MAX_AGE),
        purpose=_bilingual(m["purpose"], f"{where}.purpose", 300),
        consent=_bilingual(m["consent"], f"{where}.consent"),
        bands=bands,
    )


def _override(value: Any, where: str) -> Override:
    m = _map(value, where, {"allowed", "by"})
    by = _list(m["by"], f"{where}.by", len(ROLES))
    for i, role in enumerate(by):
        if role not in ROLES:
            raise _fail(f"{where}.by[{i}]", f"must be one of {', '.join(ROLES)}")
    if len(set(by)) != len(by):
        raise _fail(f"{where}.by", "names a role twice")
    return Override(_bool(m["allowed"], f"{where}.allowed"), tuple(by))


def _modality(modality: Modality, value: Any, where: str) -> ModalityRules:
    keys = {"threshold", "attempts", "override"}
    if modality is Modality.FINGERS:
        keys.add("signoff_exceptions")
    m = _map(value, where, keys)
    reasons: list[FingerExceptionReason] = []
    if modality is Modality.FINGERS:
        for i, r in enumerate(_list(m["signoff_exceptions"], f"{where}.signoff_exceptions", 10)):
            try:
                reasons.append(FingerExceptionReason(r) if isinstance(r, str) else FingerExceptionReason("?"))
            except ValueError:
                names = ", ".join(x.value for x in FingerExceptionReason)
                raise _fail(f"{where}.signoff_exceptions[{i}]", f"must be one of {names}") from None
        if len(set(reasons)) != len(reasons):
            raise _fail(f"{where}.signoff_exceptions", "names a reason twice")
    return ModalityRules(
        modality=modality,
        threshold=_int(m["threshold"], f"{where}.threshold", 0, 100),
        attempts=_int(m["attempts"], f"{where}.attempts", 1, 20),
        override=_override(m["override"], f"{where}.override"),
        signoff_exceptions=tuple(reasons),
    )


_LEVEL_KEYS = ("tehsils", "union_councils")


def _place(value: Any, where: str, level: int, budget: list[int]) -> Place:
    child_key = _LEVEL_KEYS[level] if level < len(_LEVEL_KEYS) else None
    m = _map(value, where, {"en", "ur"} | ({child_key} if child_key else set()))
    budget[0] -= 1
    if budget[0] < 0:
        raise _fail("locations", f"hold more than {MAX_ITEMS} places")
    children: tuple[Place, ...] = ()
    if child_key is not None:
        items = _list(m[child_key], f"{where}.{child_key}")
        children = tuple(
            _place(c, f"{where}.{child_key}[{i}]", level + 1, budget) for i, c in enumerate(items)
        )
        names = [c.en for c in children]
        if len(set(names)) != len(names):
            raise _fail(f"{where}.{child_key}", "names a place twice")
    return Place(_text(m["en"], f"{where}.en", MAX_NAME), _text(m["ur"], f"{where}.ur", MAX_NAME), children)


def _settings(value: Any, where: str) -> StationSettings:
    m = _map(value, where, set(SETTING_BOUNDS))
    return StationSettings(
        **{name: _int(m[name], f"{where}.{name}", low, high) for name, (low, high) in SETTING_BOUNDS.items()}
    )


def policy_from_document(doc: Any) -> Policy:
    """The :class:`Policy` of a decoded document; :class:`PolicyError` on the first thing wrong."""
    m = _map(
        doc,
        "the document",
        {"format", "version", "kinds", "modalities", "locations", "station_places", "settings"},
    )
    if m["format"] != POLICY_FORMAT:
        raise _fail("format", f"must be {POLICY_FORMAT!r}")
    version = _int(m["version"], "version", 0, _MAX_VERSION)
    kinds_raw = _map(m["kinds"], "kinds", set(), {k.value for k in ApplicationKind})
    kinds = {ApplicationKind(k): _kind(ApplicationKind(k), v, f"kinds.{k}") for k, v in kinds_raw.items()}
    modalities_raw = _map(m["modalities"], "modalities", {x.value for x in Modality})
    modalities = {
        Modality(k): _modality(Modality(k), v, f"modalities.{k}") for k, v in modalities_raw.items()
    }
    budget = [MAX_ITEMS]
    locations = tuple(
        _place(p, f"locations[{i}]", 0, budget) for i, p in enumerate(_list(m["locations"], "locations"))
    )
    if len({d.en for d in locations}) != len(locations):
        raise _fail("locations", "names a district twice")
    raw_places = m["station_places"]
    places_raw = _map(
        raw_places, "station_places", set(), set(raw_places) if isinstance(raw_places, dict) else set()
    )
    if len(places_raw) > MAX_ITEMS:
        raise _fail("station_places", f"hold more than {MAX_ITEMS} stations")
    station_places: dict[str, StationPlace] = {}
    for sid, raw in places_raw.items():
        where = f"station_places.{sid[:64]}"
        _text(sid, "station_places (a station id)", 64)
        p = _map(raw, where, {"district", "tehsil", "union_council"})
        station_places[sid] = StationPlace(
            _text(p["district"], f"{where}.district", MAX_NAME),
            _text(p["tehsil"], f"{where}.tehsil", MAX_NAME),
            _text(p["union_council"], f"{where}.union_council", MAX_NAME),
        )
    return Policy(
        version=version,
        kinds=kinds,
        modalities=modalities,
        locations=locations,
        station_places=station_places,
        settings=_settings(m["settings"], "settings"),
    )
