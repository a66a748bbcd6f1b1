"""The enrollment record, its validation, and enrollments as files (JSON plus images)."""

from station.enrollment.example import write_example
from station.enrollment.files import enrollment_from_json, load_enrollment
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
