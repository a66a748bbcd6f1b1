"""A built-in Urdu phonetic keyboard: on screen for touch, and for a physical Latin keyboard.

No OS input method is needed. The layout follows the common phonetic scheme (CRULP style): each Latin
key gives the Urdu letter that sounds like it (``b`` ب, ``p`` پ, ``T`` ٹ, ``x`` ش …); Shift gives the
related letter (``s`` س, ``S`` ص). :class:`UrduLineEdit` maps physical key presses through the same
table, so an operator may type Urdu on an ordinary keyboard.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import QGridLayout, QLineEdit, QPushButton, QSizePolicy, QWidget

# Latin key -> Urdu character. Unshifted and shifted rows of a QWERTY keyboard.
PHONETIC: dict[str, str] = {
    # row 1
    "q": "ق", "w": "و", "e": "ع", "r": "ر", "t": "ت", "y": "ے", "u": "ء", "i": "ی", "o": "ہ", "p": "پ",
    "Q": "ْ", "W": "ؤ", "E": "ٰ", "R": "ڑ", "T": "ٹ", "Y": "َ", "U": "ئ", "I": "ِ", "O": "ۃ", "P": "ُ",
    # row 2
    "a": "ا", "s": "س", "d": "د", "f": "ف", "g": "گ", "h": "ح", "j": "ج", "k": "ک", "l": "ل",
    "A": "آ", "S": "ص", "D": "ڈ", "F": "ّ", "G": "غ", "H": "ھ", "J": "ض", "K": "خ", "L": "ٖ",
    # row 3
    "z": "ز", "x": "ش", "c": "چ", "v": "ط", "b": "ب", "n": "ن", "m": "م",
    "Z": "ذ", "X": "ژ", "C": "ث", "V": "ظ", "B": "ً", "N": "ں", "M": "ٔ",
    # punctuation and digits (Urdu forms)
    ",": "،", ".": "۔", "?": "؟", ";": "؛",
    "0": "۰", "1": "۱", "2": "۲", "3": "۳", "4": "۴", "5": "۵", "6": "۶", "7": "۷", "8": "۸", "9": "۹",
}  # fmt: skip

ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm,.")


def phonetic(text: str) -> str:
    """Transliterate typed Latin keys to Urdu characters (keys without a mapping pass through)."""
    return "".join(PHONETIC.get(ch, ch) for ch in text)


class UrduLineEdit(QLineEdit):
    """A line edit for Urdu fields: right to left, Nastaliq, physical keys mapped phonetically."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setLayoutDirection(Qt.LayoutDirection.RightToLeft)
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        text = event.text()
        if (
            len(text) == 1
            and text in PHONETIC
            and not event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.insert(PHONETIC[text])
            return
        super().keyPressEvent(event)


class UrduKeyboard(QWidget):
    """On-screen phonetic keyboard; types into whichever :class:`UrduLineEdit` last had focus."""

    typed = Signal(str)

    def __init__(self, font: QFont, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("urduKeyboard")
        self._target: QLineEdit | None = None
        self._shift = False
        self._keys: dict[str, QPushButton] = {}
        grid = QGridLayout(self)
        grid.setSpacing(4)
        grid.setContentsMargins(0, 0, 0, 0)
        for r, row in enumerate(ROWS):
            for c, key in enumerate(row):
                btn = QPushButton()
                btn.setFont(font)
                btn.setMinimumSize(48, 46)
                btn.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
                btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                btn.clicked.connect(lambda _=False, k=key: self.press(k))
                grid.addWidget(btn, r, c)
                self._keys[key] = btn
        self.shift_btn = QPushButton("⇧")
        self.space_btn = QPushButton("␣")
        self.back_btn = QPushButton("⌫")
        for i, btn in enumerate((self.shift_btn, self.space_btn, self.back_btn)):
            btn.setMinimumSize(48, 46)
            btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            grid.addWidget(btn, 4, (0, 2, 8)[i], 1, (2, 6, 2)[i])
        self.shift_btn.setCheckable(True)
        self.shift_btn.toggled.connect(self._set_shift)
        self.space_btn.clicked.connect(lambda: self._insert(" "))
        self.back_btn.clicked.connect(self._backspace)
        self._relabel()

    def attach(self, edit: QLineEdit) -> None:
        """Type into ``edit`` when it gets focus."""
        edit.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FocusIn and isinstance(watched, QLineEdit):
            self._target = watched
        return False

    @property
    def target(self) -> QLineEdit | None:
        return self._target

    def set_target(self, edit: QLineEdit | None) -> None:
        self._target = edit

    def press(self, key: str) -> None:
        """Press one on-screen key (``key`` is its unshifted Latin name)."""
        latin = key.upper() if self._shift and key.isalpha() else key
        self._insert(PHONETIC.get(latin, latin))
        if self._shift:
            self.shift_btn.setChecked(False)

    def key_label(self, key: str) -> str:
        return self._keys[key].text()

    def _set_shift(self, on: bool) -> None:
        self._shift = on
        self._relabel()

    def _relabel(self) -> None:
        for key, btn in self._keys.items():
            latin = key.upper() if self._shift and key.isalpha() else key
            ch = PHONETIC.get(latin, latin)
            # A lone combining mark is shown on a dotted circle so it is visible on the key.
            btn.setText("\u25cc" + ch if "\u064b" <= ch <= "\u065f" or ch in "\u0670\u0654\u0656" else ch)

    def _insert(self, text: str) -> None:
        if self._target is not None:
            self._target.insert(text)
            self._target.textEdited.emit(self._target.text())
        self.typed.emit(text)

    def _backspace(self) -> None:
        if self._target is not None:
            self._target.backspace()
            self._target.textEdited.emit(self._target.text())
