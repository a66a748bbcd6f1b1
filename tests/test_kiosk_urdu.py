"""Urdu on screen: every string has glyphs in the font, the phonetic keyboard types Urdu, isolates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontInfo, QFontMetrics
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from kiosk_ui.fonts import URDU_FAMILY, latin_font, load_fonts, missing_glyphs, row_height, urdu_font
from kiosk_ui.i18n import LRI, PDI, STRINGS, Lang, Translator, all_urdu_strings
from kiosk_ui.keyboard import PHONETIC, ROWS, UrduKeyboard, UrduLineEdit, phonetic
from station.auth import Role
from station.enrollment import ApplicationKind, FingerExceptionReason, FingerPosition, Gender

pytestmark = pytest.mark.qt


def urdu_texts() -> list[str]:
    texts = list(all_urdu_strings())
    for enum in (ApplicationKind, Gender, FingerPosition, FingerExceptionReason):
        texts += [m.ur for m in enum]  # type: ignore[attr-defined]
    texts += [r.label_ur for r in Role]
    texts += list(PHONETIC.values())
    return texts


def test_every_urdu_string_renders_with_glyphs_the_font_has(qapp: QApplication) -> None:
    load_fonts()
    font = urdu_font()
    assert QFontInfo(font).family() == URDU_FAMILY
    arabic = {s: missing_glyphs(_arabic_only(s), font) for s in urdu_texts()}
    assert {s: m for s, m in arabic.items() if m} == {}
    # Latin bits inside Urdu strings (placeholders, "English") fall back to the Latin font.
    mixed = {s: missing_glyphs(s, font, latin_font()) for s in urdu_texts()}
    assert {s: m for s, m in mixed.items() if m} == {}


def _arabic_only(text: str) -> str:
    return "".join(ch for ch in text if "\u0600" <= ch <= "\u06ff" or "\ufb50" <= ch <= "\ufeff")


def test_missing_glyphs_does_detect_boxes(qapp: QApplication) -> None:
    load_fonts()
    assert missing_glyphs("\U0001f600 \u0f00", urdu_font())  # emoji, Tibetan: not in Nastaliq


def test_rows_are_sized_for_nastaliq(qapp: QApplication) -> None:
    load_fonts()
    font = urdu_font()
    assert row_height(font) >= QFontMetrics(font).height()
    latin = QFontMetrics(QApplication.font()).height()
    assert QFontMetrics(font).height() >= 1.5 * latin


def test_every_string_has_both_languages() -> None:
    for key, (en, ur) in STRINGS.items():
        assert en and ur, key
        assert any("\u0600" <= ch <= "\u06ff" for ch in ur) or key == "lang.switch", key


def test_numbers_are_isolated_in_urdu_only() -> None:
    tr = Translator(Lang.UR)
    assert f"{LRI}42{PDI}" in tr.t("onb.finger_ok", n=42)
    assert LRI not in Translator(Lang.EN).t("onb.finger_ok", n=42)


def test_phonetic_keyboard_types_urdu(qtbot: QtBot) -> None:
    load_fonts()
    kb = UrduKeyboard(urdu_font())
    edit = UrduLineEdit()
    qtbot.addWidget(kb)
    qtbot.addWidget(edit)
    kb.set_target(edit)
    for key in "pakstan":
        kb.press(key)
    assert edit.text() == "پاکستان"
    kb.shift_btn.setChecked(True)
    assert kb.key_label("s") == "ص"
    kb.press("s")
    assert not kb.shift_btn.isChecked()
    kb.back_btn.click()
    assert edit.text() == "پاکستان"
    assert edit.layoutDirection() == Qt.LayoutDirection.RightToLeft


def test_physical_keys_are_mapped_phonetically(qtbot: QtBot) -> None:
    edit = UrduLineEdit()
    qtbot.addWidget(edit)
    qtbot.keyClicks(edit, "lahwr")
    assert edit.text() == "لاحور"


def test_every_key_of_the_layout_has_a_letter() -> None:
    for row in ROWS:
        for key in row:
            assert key in PHONETIC
            if key.isalpha():
                assert key.upper() in PHONETIC


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="".join(ROWS) + " ", max_size=30))
def test_phonetic_output_has_no_latin_letters(text: str) -> None:
    out = phonetic(text)
    assert not any("a" <= ch.lower() <= "z" for ch in out)
