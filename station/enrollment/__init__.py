"""The enrollment record, its validation, and enrollments as files (JSON plus images).

The example and file helpers are imported on first use (PEP 562): the policy and central need the
record and its validation without the image helpers and OpenCV.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from station.enrollment.model import (
    ApplicationKind,
    Demographics,
    Enrollment,
    FaceCapture,
    FingerCapture,
    FingerException,
    FingerExceptionReason,
    FingerPosition,
    Gender,
)
from station.enrollment.validate import (
    Problem,
    ensure_valid,
    ltr_isolate,
    normalise_cnic,
    normalise_mobile,
    normalise_urdu,
    validate,
    validate_field,
)

# Loaded on first use: they pull in the image helpers (OpenCV), which central does without.
_LAZY = {
    "write_example": "station.enrollment.example",
    "enrollment_from_json": "station.enrollment.files",
    "load_enrollment": "station.enrollment.files",
}

if TYPE_CHECKING:
    from station.enrollment.example import write_example
    from station.enrollment.files import enrollment_from_json, load_enrollment


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'station.enrollment' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ApplicationKind",
    "Demographics",
    "Enrollment",
    "FaceCapture",
    "FingerCapture",
    "FingerException",
    "FingerExceptionReason",
    "FingerPosition",
    "Gender",
    "Problem",
    "enrollment_from_json",
    "ensure_valid",
    "load_enrollment",
    "ltr_isolate",
    "normalise_cnic",
    "normalise_mobile",
    "normalise_urdu",
    "validate",
    "validate_field",
    "write_example",
]
