"""The enrollment record and its validation: the light facade every layer may import.

Enrollments as files (JSON plus images, which need Pillow and the WSQ codec) are in
:mod:`station.enrollment.files`, and the example writer (which draws a synthetic face with OpenCV)
in :mod:`station.enrollment.example`; import them from there, so that importing the model stays
cheap.
"""

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
from station.enrollment.problem import Problem
from station.enrollment.validate import (
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
    "ensure_valid",
    "ltr_isolate",
    "normalise_cnic",
    "normalise_mobile",
    "normalise_urdu",
    "validate",
    "validate_field",
]
