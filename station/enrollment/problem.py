"""One problem with an enrollment field: what the validators and the policy's capture rules report.

Its own module so that the validator (``station.enrollment.validate``) and the policy's rules
(``station.policy.rules``), which the validator calls, can both name it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    en: str
    ur: str
