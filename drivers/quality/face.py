"""ICAO-style face checks on one camera frame (Qt-free, OpenCV Haar cascades).

``check_face(frame)`` finds the face and the eyes and runs, in order: exactly one face, both eyes
found, inter-eye distance, roll, centring, head height in the frame, sharpness, exposure and a plain
background. Each check carries its measured value and a short instruction in English and Urdu that
tells the citizen what to do when it fails. ``AutoCapture`` takes the photo when every check has
passed on N consecutive frames.

Geometry follows ISO/IEC 19794-5 and ICAO 9303 in spirit: the head (crown to chin) is estimated
from the Haar face box (calibrated on the astronaut portrait: crown 0.5 box-heights above the box,
chin 1.25 below its top), the roll from the line through the eye centres.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from drivers.base import BGRImage

Point = tuple[int, int]
Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels

# Where the head lies relative to a Haar frontal-face box (fractions of the box height).
CROWN_ABOVE_BOX = 0.50
CHIN_BELOW_BOX_TOP = 1.25

# Faces are searched on a copy 200 px wide, or 150 px high for a wide frame (at most 320 px wide):
# speed. The eyes are searched on the full frame.
_DETECT_WIDTH, _DETECT_MIN_HEIGHT, _DETECT_MAX_WIDTH = 200, 150, 320
_EYE_ROI_WIDTH = 100  # the face is resampled to this width before the eyes are searched
_FACE_WIDTH = 160  # ... and to this width before sharpness and exposure are measured
_ANGLES = (0.0, -20.0, 20.0)  # a tilted head is looked for again on frames rotated by these angles


@dataclass(frozen=True)
class FaceConfig:
    """Thresholds of the checks; the defaults suit a 640x480 to 1280x720 preview."""

    min_eye_distance: float = 90.0  # pixels between the eye centres (ISO 19794-5 asks 90 for a full frontal)
    max_roll: float = 8.0  # degrees
    max_centre_offset: float = 0.12  # |face centre - frame centre| as a fraction of the frame width
    eye_line_band: tuple[float, float] = (0.25, 0.62)  # eye line, fraction of the frame height from the top
    # ICAO 9303 wants the head at 70-80 % of the *token*; the live frame may show it at 50-90 % so the
    # token crop needs at most a 1.6x zoom and the crown and chin fit with a margin.
    head_height_band: tuple[float, float] = (0.50, 0.90)
    min_sharpness: float = 25.0  # variance of the Laplacian on the face resampled to 160 px wide
    exposure_band: tuple[float, float] = (60.0, 210.0)  # mean grey level of the face
    max_clipped: float = 0.05  # share of face pixels at 250+ (highlights) or 5- (shadows)
    max_background_edges: float = 0.06  # share of edge pixels in the background beside and above the head
    max_background_std: float = 40.0  # grey-level spread of that background


@dataclass(frozen=True)
class FaceCheckResult:
    name: str
    passed: bool
    value: float | None
    instruction_en: str
    instruction_ur: str


@dataclass(frozen=True)
class FaceReport:
    checks: tuple[FaceCheckResult, ...]
    face_box: Box | None = None
    eyes: tuple[Point, Point] | tuple[()] = ()
    faces_found: int = 0

    @property
    def all_passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def first_failure(self) -> FaceCheckResult | None:
        return next((c for c in self.checks if not c.passed), None)

    def check(self, name: str) -> FaceCheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def as_dict(self, *, instructions: bool = True) -> dict[str, object]:
        """Plain types only (JSON and CBOR safe): what the CLI prints and the portrait stores."""
        checks: dict[str, object] = {}
        for c in self.checks:
            entry: dict[str, object] = {
                "passed": c.passed,
                "value": None if c.value is None else round(c.value, 3),
            }
            if instructions:
                entry |= {"instruction_en": c.instruction_en, "instruction_ur": c.instruction_ur}
            checks[c.name] = entry
        return {
            "all_passed": self.all_passed,
            "faces_found": self.faces_found,
            "face_box": list(self.face_box) if self.face_box else None,
            "eyes": [list(e) for e in self.eyes],
            "checks": checks,
        }


# name -> (English, Urdu) instruction when the check fails
_SAY: dict[str, tuple[str, str]] = {
    "no_face": (
        "No face found: look straight at the camera.",
        "کوئی چہرہ نظر نہیں آیا: سیدھا کیمرے کی طرف دیکھیں۔",
    ),
    "many_faces": (
        "More than one face: only the applicant may be in the picture.",
        "ایک سے زیادہ چہرے: تصویر میں صرف درخواست گزار ہو۔",
    ),
    "eyes": (
        "Open your eyes, look at the camera and take off glasses.",
        "آنکھیں کھولیں، کیمرے کی طرف دیکھیں اور عینک اتار دیں۔",
    ),
    "closer": ("Move closer to the camera.", "کیمرے کے قریب آئیں۔"),
    "back": ("Move back a little.", "تھوڑا پیچھے ہٹیں۔"),
    "roll": ("Tilt your head level.", "سر سیدھا رکھیں، ایک طرف نہ جھکائیں۔"),
    "centre": ("Move to the centre of the picture.", "تصویر کے بیچ میں آئیں۔"),
    "sharp": ("Hold still: the picture is blurred.", "ساکن رہیں: تصویر دھندلی ہے۔"),
    "dark": ("Too dark: add light on the face.", "بہت اندھیرا ہے: چہرے پر مزید روشنی ڈالیں۔"),
    "bright": ("Too bright: reduce the light on the face.", "روشنی بہت تیز ہے: چہرے پر روشنی کم کریں۔"),
    "uneven": (
        "Light the face evenly, without glare or deep shadow.",
        "چہرے پر یکساں روشنی ڈالیں، نہ چمک ہو نہ گہرا سایہ۔",
    ),
    "background": ("Stand in front of a plain background.", "سادہ پس منظر کے سامنے کھڑے ہوں۔"),
}

CHECK_NAMES = (
    "one_face",
    "eyes",
    "eye_distance",
    "roll",
    "centred",
    "head_height",
    "sharpness",
    "exposure",
    "background",
)
_NEEDS_FACE_INSTRUCTION = {
    "eyes": "eyes",
    "eye_distance": "closer",
    "roll": "roll",
    "centred": "centre",
    "head_height": "closer",
    "sharpness": "sharp",
    "exposure": "uneven",
    "background": "background",
}


def _result(name: str, passed: bool, value: float | None, say: str) -> FaceCheckResult:
    en, ur = _SAY[say]
    return FaceCheckResult(name, bool(passed), None if value is None else float(value), en, ur)


def _u8(a: object) -> npt.NDArray[np.uint8]:
    return np.ascontiguousarray(a, dtype=np.uint8)


_local = threading.local()  # CascadeClassifier is not safe to share between threads


def _cascade(name: str) -> cv2.CascadeClassifier:
    cache: dict[str, cv2.CascadeClassifier] | None = getattr(_local, "cascades", None)
    if cache is None:
        cache = _local.cascades = {}
    if name not in cache:
        folder: str = cv2.data.haarcascades  # type: ignore[attr-defined]  # cv2's stubs omit cv2.data
        classifier = cv2.CascadeClassifier(folder + name)
        if classifier.empty():
            raise RuntimeError(f"OpenCV Haar cascade {name} is missing: install opencv-python-headless 4.x")
        cache[name] = classifier
    return cache[name]


@dataclass
class _Found:
    boxes: list[Box]
    eyes: tuple[Point, Point] | None = None
    extra: dict[str, float] = field(default_factory=dict)


def _rotation(angle: float, centre: tuple[float, float]) -> npt.NDArray[np.float64]:
    return np.asarray(cv2.getRotationMatrix2D(centre, angle, 1.0), dtype=np.float64)


def _map_points(m: npt.NDArray[np.float64], pts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return pts @ m[:, :2].T + m[:, 2]


def _find_eyes(grey: npt.NDArray[np.uint8], box: Box) -> tuple[Point, Point] | None:
    """The two eye centres inside a face box of ``grey`` (left of the image first), or None."""
    x, y, w, h = box
    top, bottom = y + int(0.15 * h), y + int(0.60 * h)
    roi = grey[max(0, top) : max(0, bottom), max(0, x) : max(0, x + w)]
    if roi.size == 0 or roi.shape[1] < 8:
        return None
    k = _EYE_ROI_WIDTH / roi.shape[1]
    roi = _u8(cv2.resize(roi, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR))
    roi = _u8(cv2.equalizeHist(roi))
    size = _EYE_ROI_WIDTH
    lo, hi = (size // 8, size // 8), (size // 3, size // 3)
    found = _cascade("haarcascade_eye.xml").detectMultiScale(roi, 1.15, 3, minSize=lo, maxSize=hi)
    if len(found) < 2:
        found = _cascade("haarcascade_eye_tree_eyeglasses.xml").detectMultiScale(
            roi, 1.15, 3, minSize=lo, maxSize=hi
        )
    centres = [(float(ex + ew / 2), float(ey + eh / 2), float(ew)) for ex, ey, ew, eh in found]
    left = [c for c in centres if c[0] < size * 0.5]
    right = [c for c in centres if c[0] >= size * 0.5]
    best: tuple[float, tuple[float, float, float], tuple[float, float, float]] | None = None
    for a in left:
        for b in right:
            dx, dy = b[0] - a[0], b[1] - a[1]
            if not 0.25 * size <= dx <= 0.70 * size or abs(dy) > 0.6 * dx:
                continue
            off_centre = abs((a[0] + b[0]) / 2 - size / 2) / size
            cost = abs(dy) / dx + abs(a[2] - b[2]) / max(a[2], b[2]) + off_centre
            if best is None or cost < best[0]:
                best = (cost, a, b)
    if best is None:
        return None
    _, a, b = best
    return (
        (round(x + a[0] / k), round(top + a[1] / k)),
        (round(x + b[0] / k), round(top + b[1] / k)),
    )


def _detect(grey: npt.NDArray[np.uint8], shrunk: tuple[npt.NDArray[np.uint8], float]) -> _Found:
    """Faces (and the eyes when there is exactly one) in full-frame coordinates.

    A candidate face is confirmed by its eyes when there are several (Haar finds the odd face in a
    badge or a pattern); a face not found upright is looked for again on the frame rotated by
    +-20 degrees, and its eyes mapped back, so a tilted head fails roll rather than "no face".
    """
    height, width = grey.shape
    small, s = shrunk
    small = _u8(cv2.equalizeHist(small))
    centre = (small.shape[1] / 2, small.shape[0] / 2)
    min_side = max(24, min(small.shape) // 4)  # a face under a quarter of the frame is too far to judge
    fallback: _Found | None = None
    for angle in _ANGLES:
        m = _rotation(angle, centre)
        view = (
            cv2.warpAffine(small, m, (small.shape[1], small.shape[0]), borderMode=cv2.BORDER_REPLICATE)
            if angle
            else small
        )
        faces = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
            view, 1.2, 3, minSize=(min_side, min_side)
        )
        if len(faces) == 0:
            continue
        mf = _rotation(angle, (width / 2, height / 2))
        inv_full = cv2.invertAffineTransform(mf).astype(np.float64)
        view_full = (
            _u8(cv2.warpAffine(grey, mf, (width, height), borderMode=cv2.BORDER_REPLICATE)) if angle else grey
        )
        candidates: list[tuple[Box, tuple[Point, Point] | None]] = []
        for fx, fy, fw, fh in faces:
            box_rot: Box = (round(fx / s), round(fy / s), round(fw / s), round(fh / s))
            centre_rot = np.array([[box_rot[0] + box_rot[2] / 2, box_rot[1] + box_rot[3] / 2]])
            c = _map_points(inv_full, centre_rot)[0]
            side = box_rot[2]
            box: Box = (round(c[0] - side / 2), round(c[1] - side / 2), side, side)
            eyes_rot = _find_eyes(view_full, box_rot)
            eyes: tuple[Point, Point] | None = None
            if eyes_rot is not None:
                pts = _map_points(inv_full, np.array(eyes_rot, dtype=np.float64))
                a, b = sorted(((round(p[0]), round(p[1])) for p in pts), key=lambda p: p[0])
                eyes = (a, b)
            candidates.append((box, eyes))
        confirmed = [cand for cand in candidates if cand[1] is not None]
        if len(confirmed) > 1 or (len(candidates) > 1 and not confirmed):
            return _Found([b for b, _ in (confirmed or candidates)])
        if confirmed:
            return _Found([confirmed[0][0]], confirmed[0][1])
        if fallback is None:
            fallback = _Found([candidates[0][0]])
    return fallback or _Found([])


def _face_region(grey: npt.NDArray[np.uint8], box: Box) -> npt.NDArray[np.uint8]:
    """The inner face (no hair, no background) resampled to a fixed width."""
    x, y, w, h = box
    inner = grey[max(0, y + h // 6) : max(0, y + h - h // 12), max(0, x + w // 8) : max(0, x + w - w // 8)]
    if inner.size == 0:
        return inner
    k = _FACE_WIDTH / inner.shape[1]
    method = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    return _u8(cv2.resize(inner, None, fx=k, fy=k, interpolation=method))


def _shrink(grey: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], float]:
    """The frame shrunk for face detection, and the scale factor used."""
    height, width = grey.shape
    s = min(1.0, _DETECT_MAX_WIDTH / width, max(_DETECT_WIDTH / width, _DETECT_MIN_HEIGHT / height))
    if s >= 1:
        return grey, 1.0
    return _u8(cv2.resize(grey, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)), s


def _background(small: npt.NDArray[np.uint8], s: float, box: Box) -> tuple[float, float] | None:
    """(edge share, grey std) of the frame beside and above the head, down to the chin; None if no room.

    Measured on the shrunken frame ``small`` (scale ``s``), where ``box`` is in full-frame pixels.
    """
    height, width = small.shape
    x, y, w, h = (v * s for v in box)
    crown = max(0, int(y - CROWN_ABOVE_BOX * h))
    chin = min(height, int(y + CHIN_BELOW_BOX_TOP * h))
    left, right = max(0, int(x - 0.35 * w)), min(width, int(x + 1.35 * w))
    mask = np.zeros_like(small, dtype=bool)
    mask[:chin, :] = True
    mask[crown:chin, left:right] = False
    margin = max(1, crown // 8)
    mask[max(0, crown - margin) : crown, left:right] = False  # hair above the estimated crown
    if mask.sum() < 0.03 * small.size:
        return None
    edges = cv2.Canny(cv2.GaussianBlur(small, (3, 3), 0), 60, 150) > 0
    return float(edges[mask].mean()), float(small[mask].std())


def check_face(frame: BGRImage, *, config: FaceConfig | None = None) -> FaceReport:
    """Run every check on one BGR frame (any size). Never raises for an ordinary photo."""
    cfg = config or FaceConfig()
    if frame.size == 0 or frame.ndim not in (2, 3):
        raise ValueError(f"check_face needs an H x W x 3 picture, not an array of shape {frame.shape}")
    grey = _u8(frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    height, width = grey.shape
    shrunk = _shrink(grey)
    found = _detect(grey, shrunk)
    n = len(found.boxes)
    checks: list[FaceCheckResult] = [
        _result("one_face", n == 1, float(n), "no_face" if n == 0 else "many_faces" if n > 1 else "no_face")
    ]
    if n != 1:
        checks += [_result(name, False, None, _NEEDS_FACE_INSTRUCTION[name]) for name in CHECK_NAMES[1:]]
        return FaceReport(tuple(checks), faces_found=n)

    box = found.boxes[0]
    x, y, w, h = box
    eyes = found.eyes
    checks.append(_result("eyes", eyes is not None, 2.0 if eyes else 0.0, "eyes"))
    if eyes is not None:
        (lx, ly), (rx, ry) = eyes
        distance = math.hypot(rx - lx, ry - ly)
        roll = math.degrees(math.atan2(ry - ly, rx - lx))
        mid_x, mid_y = (lx + rx) / 2, (ly + ry) / 2
        checks.append(_result("eye_distance", distance >= cfg.min_eye_distance, distance, "closer"))
        checks.append(_result("roll", abs(roll) <= cfg.max_roll, roll, "roll"))
    else:
        mid_x, mid_y = x + w / 2, y + 0.38 * h
        checks.append(_result("eye_distance", False, None, "closer"))
        checks.append(_result("roll", False, None, "roll"))

    offset = (mid_x - width / 2) / width
    eye_line = mid_y / height
    lo, hi = cfg.eye_line_band
    centred = abs(offset) <= cfg.max_centre_offset and lo <= eye_line <= hi
    checks.append(_result("centred", centred, offset, "centre"))  # value: signed, fraction of the width

    head = (CROWN_ABOVE_BOX + CHIN_BELOW_BOX_TOP) * h / height
    hlo, hhi = cfg.head_height_band
    checks.append(_result("head_height", hlo <= head <= hhi, head, "closer" if head < hlo else "back"))

    face = _face_region(grey, box)
    sharp = float(cv2.Laplacian(face, cv2.CV_64F).var()) if face.size else 0.0
    checks.append(_result("sharpness", sharp >= cfg.min_sharpness, sharp, "sharp"))

    mean = float(face.mean()) if face.size else 0.0
    clipped = float(((face >= 250) | (face <= 5)).mean()) if face.size else 1.0
    elo, ehi = cfg.exposure_band
    say = "dark" if mean < elo else "bright" if mean > ehi else "uneven"
    checks.append(_result("exposure", elo <= mean <= ehi and clipped <= cfg.max_clipped, mean, say))

    bg = _background(shrunk[0], shrunk[1], box)
    if bg is None:
        checks.append(_result("background", True, None, "background"))  # the face fills the frame
    else:
        edge_share, spread = bg
        plain = edge_share <= cfg.max_background_edges and spread <= cfg.max_background_std
        checks.append(_result("background", plain, edge_share, "background"))
    return FaceReport(tuple(checks), face_box=box, eyes=eyes or (), faces_found=1)


class AutoCapture:
    """Take the photo once every check has passed on ``frames`` consecutive frames."""

    def __init__(self, frames: int = 5) -> None:
        if frames < 1:
            raise ValueError("frames must be at least 1")
        self.frames = frames
        self.streak = 0

    def reset(self) -> None:
        self.streak = 0

    def feed(self, report: FaceReport) -> bool:
        self.streak = self.streak + 1 if report.all_passed else 0
        return self.streak >= self.frames
