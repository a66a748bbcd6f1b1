"""Every string the kiosk shows, in English and Urdu, and the current language.

Urdu is shown right to left in Noto Nastaliq Urdu; numbers, CNICs and phone numbers inside Urdu text are
wrapped in left-to-right isolates (:func:`ltr`). Messages coming from ``station/`` (validation problems,
errors) carry their own Urdu and are shown as they come.
"""

from __future__ import annotations

import enum

LRI, PDI = "\u2066", "\u2069"


class Lang(enum.StrEnum):
    EN = "en"
    UR = "ur"


def ltr(text: object) -> str:
    """A number, CNIC or phone number kept left to right inside Urdu text."""
    return f"{LRI}{text}{PDI}"


STRINGS: dict[str, tuple[str, str]] = {
    "app.title": ("Enrollment Station", "اندراج اسٹیشن"),
    "lang.switch": ("اردو", "English"),
    "demo.banner": (
        "DEMO MODE: simulated scanner and camera. Operator {op}, PIN {pin}; any finger on the simulator.",
        "ڈیمو: فرضی اسکینر اور کیمرا۔ آپریٹر {op}، پن {pin}؛ سیمولیٹر پر کوئی بھی انگلی۔",
    ),
    # login / lock
    "login.title": ("Operator login", "آپریٹر لاگ اِن"),
    "login.locked_title": ("Station locked", "اسٹیشن مقفل ہے"),
    "login.id": ("Operator id", "آپریٹر شناخت"),
    "login.pin": ("PIN", "پن"),
    "login.next": ("Continue", "آگے"),
    "login.finger": (
        "Put your own finger on the scanner to finish logging in.",
        "لاگ اِن مکمل کرنے کے لیے اپنی انگلی اسکینر پر رکھیں۔",
    ),
    "login.checking": ("Checking…", "جانچ ہو رہی ہے…"),
    "login.cancel": ("Cancel", "منسوخ"),
    "login.idle": (
        "The station locked itself after {s} seconds without use. Log in again.",
        "استعمال نہ ہونے پر {s} سیکنڈ بعد اسٹیشن خود مقفل ہو گیا۔ دوبارہ لاگ اِن کریں۔",
    ),
    # header
    "hdr.operator": ("Operator: {op}", "آپریٹر: {op}"),
    "hdr.lock": ("Lock", "مقفل کریں"),
    "hdr.status": ("Status", "صورتحال"),
    "hdr.tech": ("Technician", "ٹیکنیشن"),
    "hdr.operators": ("Operators", "آپریٹرز"),
    "hdr.new": ("New enrollment", "نیا اندراج"),
    "hdr.outcomes": ("Re-enroll list", "دوبارہ اندراج"),
    # outcomes from central (no PII: tracking numbers, dates, reasons)
    "out.title": ("Applications to re-enroll", "دوبارہ اندراج والی درخواستیں"),
    "out.hint": (
        "The central office sent these applications back. When the citizen returns with the receipt,"
        " start a new enrollment.",
        "مرکزی دفتر نے یہ درخواستیں واپس بھیجی ہیں۔ جب شہری رسید کے ساتھ واپس آئے تو نیا اندراج شروع کریں۔",
    ),
    "out.none": ("No application is waiting to be re-enrolled.", "کوئی درخواست دوبارہ اندراج کی منتظر نہیں۔"),
    "out.tracking": ("Tracking number", "ٹریکنگ نمبر"),
    "out.date": ("Date", "تاریخ"),
    "out.reason": ("Reason", "وجہ"),
    "out.lookup": ("Look up an application", "درخواست تلاش کریں"),
    "out.look_up": ("Look up", "تلاش کریں"),
    "out.accepted": ("Application {n} was accepted.", "درخواست {n} منظور ہو گئی۔"),
    "out.reenroll": (
        "Application {n} must be enrolled again: start a new enrollment.",
        "درخواست {n} کا دوبارہ اندراج ضروری ہے: نیا اندراج شروع کریں۔",
    ),
    "out.rejected": ("Application {n} was rejected.", "درخواست {n} مسترد ہو گئی۔"),
    "out.pending": (
        "Application {n} is being processed: no decision yet.",
        "درخواست {n} زیر کارروائی ہے: ابھی فیصلہ نہیں ہوا۔",
    ),
    "out.decided": ("Decided on {d}", "فیصلہ: {d}"),
    # steps
    "step.kind": ("Application", "درخواست"),
    "step.demo": ("Details", "کوائف"),
    "step.face": ("Photo", "تصویر"),
    "step.fingers": ("Fingers", "انگلیاں"),
    "step.review": ("Review", "جائزہ"),
    "step.receipt": ("Receipt", "رسید"),
    "nav.back": ("Back", "پیچھے"),
    "nav.next": ("Next", "آگے"),
    "nav.cancel": ("Cancel enrollment", "اندراج منسوخ کریں"),
    # kind + consent
    "kind.title": ("Kind of application", "درخواست کی قسم"),
    "consent.purpose": ("Purpose of collecting this data", "یہ معلومات جمع کرنے کا مقصد"),
    "consent.read": (
        "Read the purpose to the citizen. Their photograph, fingerprints and details are kept encrypted"
        " and sent only to the registration office.",
        "شہری کو مقصد پڑھ کر سنائیں۔ ان کی تصویر، انگلیوں کے نشانات اور کوائف خفیہ رکھے جاتے ہیں"
        " اور صرف رجسٹریشن دفتر کو بھیجے جاتے ہیں۔",
    ),
    "consent.check": ("The citizen agrees", "شہری رضامند ہے"),
    # demographics
    "f.name_ur": ("Name (Urdu)", "نام (اردو)"),
    "f.name_en": ("Name (English)", "نام (انگریزی)"),
    "f.father_or_husband_name_ur": ("Father's/husband's name (Urdu)", "والد/شوہر کا نام (اردو)"),
    "f.father_or_husband_name_en": ("Father's/husband's name (English)", "والد/شوہر کا نام (انگریزی)"),
    "f.cnic": ("CNIC", "شناختی کارڈ نمبر"),
    "f.parent_cnic": ("Father's/husband's CNIC", "والد/شوہر کا شناختی کارڈ نمبر"),
    "f.date_of_birth": ("Date of birth (YYYY-MM-DD)", "تاریخ پیدائش (سال-مہینہ-دن)"),
    "f.gender": ("Gender", "جنس"),
    "f.present_address_ur": ("Present address (Urdu)", "موجودہ پتہ (اردو)"),
    "f.present_address_en": ("Present address (English)", "موجودہ پتہ (انگریزی)"),
    "f.permanent_address_ur": ("Permanent address (Urdu)", "مستقل پتہ (اردو)"),
    "f.permanent_address_en": ("Permanent address (English)", "مستقل پتہ (انگریزی)"),
    "f.district": ("District", "ضلع"),
    "f.tehsil": ("Tehsil", "تحصیل"),
    "f.union_council": ("Union council", "یونین کونسل"),
    "f.mobile": ("Mobile number", "موبائل نمبر"),
    "f.same_address": ("Permanent address same as present", "مستقل پتہ موجودہ پتے جیسا ہے"),
    "kbd.title": ("Urdu keyboard", "اردو کی بورڈ"),
    "kbd.space": ("Space", "وقفہ"),
    "kbd.shift": ("Shift", "شفٹ"),
    # face
    "face.title": ("Photograph", "تصویر"),
    "face.waiting": ("Starting the camera…", "کیمرا شروع ہو رہا ہے…"),
    "face.auto": (
        "The photo is taken automatically when every check passes.",
        "تمام جانچ پوری ہونے پر تصویر خود بخود لی جائے گی۔",
    ),
    "face.take": ("Take photo now", "ابھی تصویر لیں"),
    "face.retake": ("Retake", "دوبارہ لیں"),
    "face.ok": ("Photo taken. Check it, then press Next.", "تصویر لے لی گئی۔ دیکھ لیں، پھر آگے دبائیں۔"),
    "face.hold": ("Hold still…", "ساکن رہیں…"),
    # fingers
    "fingers.title": ("Ten fingers", "دس انگلیاں"),
    "fingers.place": ("Place the {finger} on the scanner.", "{finger} اسکینر پر رکھیں۔"),
    "fingers.uploading": ("Reading the image from the scanner…", "اسکینر سے تصویر پڑھی جا رہی ہے…"),
    "fingers.quality": ("Quality {q} (attempt {a} of {n})", "معیار {q} (کوشش {a} از {n})"),
    "fingers.low": (
        "Quality too low: clean the finger and the glass, press flat, try again.",
        "معیار کم ہے: انگلی اور شیشہ صاف کریں، سیدھا دبائیں، دوبارہ کوشش کریں۔",
    ),
    "fingers.exception": (
        "No attempts left: choose why this finger cannot be captured.",
        "کوششیں ختم: وجہ چنیں کہ یہ انگلی کیوں نہیں لی جا سکتی۔",
    ),
    "fingers.keep_best": ("Keep best attempt", "بہترین کوشش رکھیں"),
    "fingers.record_exc": ("Record exception", "وجہ درج کریں"),
    "fingers.skip": ("Cannot capture…", "نہیں لی جا سکتی…"),
    "fingers.retake": ("Retake", "دوبارہ لیں"),
    "fingers.done": ("All ten fingers are done. Press Next.", "دسوں انگلیاں مکمل ہیں۔ آگے دبائیں۔"),
    "fingers.note": ("Note (for 'Other')", "وضاحت ('دیگر' کے لیے)"),
    # review / commit / receipt
    "review.title": ("Review everything with the citizen", "شہری کے ساتھ سب کچھ دیکھ لیں"),
    "review.edit": ("Edit", "تبدیل کریں"),
    "review.commit": ("Save and seal", "محفوظ اور سیل کریں"),
    "review.sealing": ("Sealing and saving…", "سیل اور محفوظ ہو رہا ہے…"),
    "review.exception": ("exception: {reason}", "استثنا: {reason}"),
    "receipt.title": ("Enrollment saved", "اندراج محفوظ ہو گیا"),
    "receipt.tracking": ("Tracking number", "ٹریکنگ نمبر"),
    "receipt.print": ("Print receipt", "رسید پرنٹ کریں"),
    "receipt.printed": ("Receipt printed.", "رسید پرنٹ ہو گئی۔"),
    "receipt.next": ("Next citizen", "اگلا شہری"),
    "receipt.station": ("Station", "اسٹیشن"),
    # status
    "status.title": ("Station status", "اسٹیشن کی صورتحال"),
    "status.queue": ("Queue", "قطار"),
    "status.last_sync": ("Last sync", "آخری ہم آہنگی"),
    "status.central": ("Central office reachable", "مرکزی دفتر سے رابطہ"),
    "status.cert": ("Certificate expires", "سرٹیفکیٹ کی میعاد"),
    "status.disk": ("Disk free", "خالی جگہ"),
    "status.yes": ("yes", "ہاں"),
    "status.no": ("no", "نہیں"),
    "status.unknown": ("unknown", "معلوم نہیں"),
    "status.never": ("never", "کبھی نہیں"),
    "status.close": ("Close", "بند کریں"),
    # devices
    "dev.scanner_lost": (
        "The fingerprint scanner was unplugged: reconnect its cable. Capture resumes by itself.",
        "فنگر پرنٹ اسکینر نکل گیا ہے: اس کی تار دوبارہ لگائیں۔ عمل خود دوبارہ شروع ہو جائے گا۔",
    ),
    "dev.scanner_back": ("The fingerprint scanner is connected again.", "فنگر پرنٹ اسکینر دوبارہ جڑ گیا ہے۔"),
    "dev.camera_lost": (
        "The camera was unplugged: reconnect its cable. The preview resumes by itself.",
        "کیمرا نکل گیا ہے: اس کی تار دوبارہ لگائیں۔ تصویر خود دوبارہ شروع ہو جائے گی۔",
    ),
    "dev.camera_back": ("The camera is connected again.", "کیمرا دوبارہ جڑ گیا ہے۔"),
    "dev.error": ("Device problem: {msg}", "آلے کا مسئلہ: {msg}"),
    # technician / onboarding
    "tech.title": ("Technician", "ٹیکنیشن"),
    "tech.devices": ("Devices", "آلات"),
    "tech.test_capture": ("Test capture", "آزمائشی نشان"),
    "tech.trace": ("Serial trace", "سیریل ٹریس"),
    "tech.log": ("Recent log", "حالیہ لاگ"),
    "tech.provisioning": ("Provisioning", "تنصیب"),
    "tech.exit": ("Exit kiosk", "کیوسک بند کریں"),
    "tech.only": (
        "Only a technician can close the kiosk: log in as a technician.",
        "صرف ٹیکنیشن کیوسک بند کر سکتا ہے: ٹیکنیشن کے طور پر لاگ اِن کریں۔",
    ),
    "onb.title": ("Add an operator", "آپریٹر شامل کریں"),
    "onb.role": ("Role", "کردار"),
    "onb.pin2": ("PIN again", "پن دوبارہ"),
    "onb.enroll_finger": ("Enroll finger", "انگلی درج کریں"),
    "onb.save": ("Add operator", "آپریٹر شامل کریں"),
    "onb.added": ("Operator {op} added with {n} finger(s).", "آپریٹر {op} شامل، {n} انگلی کے ساتھ۔"),
    "onb.pin_mismatch": ("The two PINs differ: type them again.", "دونوں پن مختلف ہیں: دوبارہ درج کریں۔"),
    "onb.finger_ok": ("Finger {n} enrolled.", "انگلی {n} درج ہو گئی۔"),
    "onb.supervisor_only": ("Only a supervisor can add operators.", "صرف نگران آپریٹر شامل کر سکتا ہے۔"),
}


class Translator:
    """The current language; :meth:`t` looks a key up and fills ``{placeholders}``."""

    def __init__(self, lang: Lang = Lang.EN) -> None:
        self.lang = lang

    @property
    def urdu(self) -> bool:
        return self.lang is Lang.UR

    def t(self, key: str, **kwargs: object) -> str:
        en, ur = STRINGS[key]
        text = ur if self.urdu else en
        if kwargs:
            values = {k: (ltr(v) if self.urdu and _numeric(v) else v) for k, v in kwargs.items()}
            text = text.format(**values)
        return text

    def pick(self, en: str, ur: str | None) -> str:
        """One of a (English, Urdu) pair from ``station/`` (Urdu falls back to English)."""
        return (ur or en) if self.urdu else en


def _numeric(value: object) -> bool:
    s = str(value)
    return any(ch.isdigit() for ch in s) and not any("\u0600" <= ch <= "\u06ff" for ch in s)


def all_urdu_strings() -> list[str]:
    """Every Urdu string of the kiosk (for the glyph-coverage test)."""
    return [ur for _, ur in STRINGS.values()]
