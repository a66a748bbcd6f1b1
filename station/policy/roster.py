"""The operator roster central sends with the policy: who may not log in at this station.

Operators are onboarded at the station (PIN and finger, by a supervisor) and their fingers never leave
it; central only names operator ids, ``allowed`` or ``disabled``. An operator central disabled is
refused at login (after the PIN, so the refusal does not tell a stranger which ids exist) with a
message that says why and what to do; an operator central never named stays allowed.
"""

from __future__ import annotations

from station.errors import StationError
from station.policy.inforce import InForce


class OperatorDisabled(StationError):
    code = "auth.disabled_by_central"


def ensure_operator_allowed(in_force: InForce, operator_id: str) -> None:
    """Raise :class:`OperatorDisabled` when central disabled ``operator_id`` for this station."""
    if in_force.operator_disabled(operator_id):
        raise OperatorDisabled(
            "The central office has disabled this operator at this station: you cannot log in."
            " Ask your supervisor to contact the central office.",
            urdu="مرکزی دفتر نے اس اسٹیشن پر اس آپریٹر کو غیر فعال کر دیا ہے: آپ لاگ اِن نہیں کر سکتے۔"
            " اپنے نگران سے کہیں کہ مرکزی دفتر سے رابطہ کریں۔",
        )
