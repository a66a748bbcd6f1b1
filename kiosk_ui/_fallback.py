"""Small real computations the kiosk uses while a driver module (quality, match, face, portrait) is not
installed. Each is a genuine measure, simpler than the driver's; ``kiosk_ui.devices`` prefers the driver."""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
from PIL import Image

from kiosk_ui.devices import FaceCheck, FaceReport

MATCH_THRESHOLD = 40  # bozorth3: the same print scores in the hundreds, other fingers about 0-12 (NOTES)


def finger_quality(pixels: np.ndarray) -> int:
    """0-100 from the share of the image with ridge contrast and how coherent the ridge flow is there."""
    img = pixels.astype(np.float32)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    b = 16
    h, w = (img.shape[0] // b) * b, (img.shape[1] // b) * b
    if h == 0 or w == 0:
        return 0

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[:h, :w].reshape(h // b, b, w // b, b).swapaxes(1, 2).reshape(h // b, w // b, b * b)

    std = blocks(img).std(axis=2)
    gxx, gyy, gxy = blocks(gx * gx).sum(2), blocks(gy * gy).sum(2), blocks(gx * gy).sum(2)
    coherence = np.sqrt((gxx - gyy) ** 2 + 4 * gxy**2) / (gxx + gyy + 1e-6)
    fg = std > 20
    if not fg.any():
        return 0
    area = fg.mean()
    score = 100 * min(1.0, area / 0.5) ** 0.5 * float(np.clip(coherence[fg].mean() / 0.6, 0, 1))
    return round(score)


def _minutiae(pixels: np.ndarray) -> Any:
    import nbis

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    extractor = nbis.new_nbis_extractor(
        nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=500.0
        )
    )
    return extractor, extractor.extract_minutiae(buf.getvalue())


def finger_template(pixels: np.ndarray) -> bytes:
    _, minutiae = _minutiae(pixels)
    return bytes(minutiae.to_iso_19794_2_2005())


def finger_matches(enrolled: bytes, live: bytes) -> bool:
    import nbis

    extractor = nbis.new_nbis_extractor(
        nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=500.0
        )
    )
    a = extractor.load_iso_19794_2_2005(enrolled)
    b = extractor.load_iso_19794_2_2005(live)
    return int(a.compare(b)) >= MATCH_THRESHOLD


_CASCADES: dict[str, Any] = {}


def _cascade(name: str) -> Any:
    if name not in _CASCADES:
        _CASCADES[name] = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    return _CASCADES[name]


def check_face(frame: np.ndarray) -> FaceReport:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    scale = 320 / max(grey.shape[1], 1)
    small = cv2.resize(grey, None, fx=scale, fy=scale) if scale < 1 else grey
    s = scale if scale < 1 else 1.0
    faces = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(small, 1.1, 5, minSize=(40, 40))
    checks = [
        FaceCheck("one_face", len(faces) == 1,
                  "Exactly one face must be in the picture: others step out of the frame.",
                  "تصویر میں صرف ایک چہرہ ہو: باقی افراد فریم سے باہر ہو جائیں۔"),
    ]  # fmt: skip
    box = None
    if len(faces) == 1:
        x, y, w, h = (int(v / s) for v in faces[0])
        box = (x, y, w, h)
        cx, cy = x + w / 2, y + h / 2
        H, W = grey.shape
        centred = abs(cx - W / 2) < W * 0.15 and abs(cy - H / 2) < H * 0.2
        checks.append(
            FaceCheck("centred", centred, "Move to the centre of the picture.", "تصویر کے درمیان میں آئیں۔")
        )
        checks.append(FaceCheck("size", w > W * 0.15, "Move closer to the camera.", "کیمرے کے قریب آئیں۔"))
        roi = grey[y : y + h, x : x + w]
        sharp = cv2.Laplacian(roi, cv2.CV_64F).var() if roi.size else 0.0
        checks.append(FaceCheck("sharpness", bool(sharp > 30), "Hold still: the picture is blurred.",
                                "ساکن رہیں: تصویر دھندلی ہے۔"))  # fmt: skip
        mean = float(roi.mean()) if roi.size else 0.0
        checks.append(FaceCheck("exposure", 50 < mean < 210, "Light the face evenly.",
                                "چہرے پر یکساں روشنی ڈالیں۔"))  # fmt: skip
    return FaceReport(tuple(checks), all(c.passed for c in checks) and box is not None, box, ())


def portrait(frame: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """A 3:4 head-and-shoulders crop around the face, 480x640, JPEG under ~40 KB."""
    report = check_face(frame)
    H, W = frame.shape[:2]
    if report.face_box is not None:
        x, y, w, h = report.face_box
        ch = min(H, int(h * 2.0))
        cw = min(W, int(ch * 3 / 4))
        cx, cy = x + w // 2, y + h // 2
        x0 = max(0, min(W - cw, cx - cw // 2))
        y0 = max(0, min(H - ch, cy - int(ch * 0.45)))
        crop = frame[y0 : y0 + ch, x0 : x0 + cw]
    else:
        crop = frame
    token = cv2.resize(crop, (480, 640), interpolation=cv2.INTER_AREA)
    quality, jpeg = 90, b""
    while quality >= 30:
        _, enc = cv2.imencode(".jpg", token, [cv2.IMWRITE_JPEG_QUALITY, quality])
        jpeg = enc.tobytes()
        if len(jpeg) <= 40_000:
            break
        quality -= 10
    return jpeg, {c.name: bool(c.passed) for c in report.checks} | {"jpeg_quality": quality}
