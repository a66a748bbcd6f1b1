"""The policy central sends every station: capture rules per kind and age band, thresholds, texts, places.

Qt-free. The wizard, ``station enroll``, the kiosk and central's packet check all take their rules from a
:class:`Policy`; on a station the one in force is :func:`policy_in_force` (the built-in default
:data:`BUILTIN` until central has sent one). See ``model.py`` for the document and ``bundle.py`` for
how it travels.
"""

from station.policy.default import BUILTIN, builtin_policy
from station.policy.inforce import BUILTIN_IN_FORCE, InForce, install_bundle, load_policy_key, policy_in_force
from station.policy.model import (
    AgeBand,
    KindRules,
    Modality,
    ModalityRules,
    Override,
    Place,
    Policy,
    PolicyError,
    Requirement,
    StationSettings,
    Text,
)
from station.policy.rules import (
    CaptureSummary,
    age_on,
    band_for,
    capture_summary,
    check_captures,
    check_feasible,
    check_summary,
    ensure_feasible,
)

__all__ = [
    "BUILTIN",
    "BUILTIN_IN_FORCE",
    "AgeBand",
    "CaptureSummary",
    "InForce",
    "KindRules",
    "Modality",
    "ModalityRules",
    "Override",
    "Place",
    "Policy",
    "PolicyError",
    "Requirement",
    "StationSettings",
    "Text",
    "age_on",
    "band_for",
    "builtin_policy",
    "capture_summary",
    "check_captures",
    "check_feasible",
    "check_summary",
    "ensure_feasible",
    "install_bundle",
    "load_policy_key",
    "policy_in_force",
]
