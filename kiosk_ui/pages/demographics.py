"""Step 2: the citizen's details, checked field by field as typed (``station.enrollment.validate``).

Urdu fields take input from the built-in phonetic keyboard (on screen, or the physical keys mapped
phonetically): no OS input method is needed. CNICs and phone numbers are always shown left to right.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QGridLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from kiosk_ui.context import KioskContext
from kiosk_ui.fonts import row_height, urdu_font
from kiosk_ui.keyboard import UrduKeyboard, UrduLineEdit
from kiosk_ui.widgets import Page, message_label, title_label
from station.enrollment import Gender
from station.enrollment.problem import Problem
from station.wizard import DEMOGRAPHIC_FIELDS

URDU_FIELDS = ("name_ur", "father_or_husband_name_ur", "present_address_ur", "permanent_address_ur")
LTR_FIELDS = ("cnic", "parent_cnic", "date_of_birth", "mobile")


class DemographicsPage(Page):
    holds_pii = True

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        outer = QVBoxLayout(self)
        self.title = title_label()
        outer.addWidget(self.title)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        body = QWidget()
        grid = QGridLayout(body)
        grid.setHorizontalSpacing(16)
        self.labels: dict[str, QLabel] = {}
        self.inputs: dict[str, QLineEdit | QComboBox] = {}
        self.errors: dict[str, QLabel] = {}
        self.touched: set[str] = set()
        ufont = urdu_font()
        for i, name in enumerate(DEMOGRAPHIC_FIELDS):
            r, c = divmod(i, 2)
            label = QLabel()
            widget: QLineEdit | QComboBox
            if name == "gender":
                widget = QComboBox()
                widget.addItem("", "")
                for g in Gender:
                    widget.addItem(g.en, g.value)
                widget.currentIndexChanged.connect(lambda _=0, n=name: self._edited(n))
            elif name in URDU_FIELDS:
                widget = UrduLineEdit()
                widget.setFont(ufont)
                widget.setMinimumHeight(row_height(ufont))
                widget.textEdited.connect(lambda _="", n=name: self._edited(n))
            else:
                widget = QLineEdit()
                if name in LTR_FIELDS:
                    widget.setLayoutDirection(Qt.LayoutDirection.LeftToRight)
                    widget.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                widget.textEdited.connect(lambda _="", n=name: self._edited(n))
            widget.setObjectName(f"field_{name}")
            widget.setMinimumHeight(max(widget.minimumHeight(), 52))
            err = QLabel()
            err.setObjectName(f"error_{name}")
            err.setWordWrap(True)
            err.setStyleSheet("color:#b3261e;")
            cell = QVBoxLayout()
            cell.setSpacing(2)
            cell.addWidget(label)
            cell.addWidget(widget)
            cell.addWidget(err)
            grid.addLayout(cell, r, c)
            self.labels[name], self.inputs[name], self.errors[name] = label, widget, err
        self.same_address = QCheckBox()
        self.same_address.toggled.connect(self._copy_address)
        grid.addWidget(self.same_address, grid.rowCount(), 0, 1, 2)
        scroll.setWidget(body)
        outer.addWidget(scroll, 3)
        self.message = message_label()
        outer.addWidget(self.message)
        self.keyboard = UrduKeyboard(ufont)
        for name in URDU_FIELDS:
            edit = self.inputs[name]
            assert isinstance(edit, QLineEdit)
            self.keyboard.attach(edit)
        first = self.inputs["name_ur"]
        assert isinstance(first, QLineEdit)  # the Urdu fields are text fields
        self.keyboard.set_target(first)
        self.keyboard.setMaximumHeight(300)
        outer.addWidget(self.keyboard, 2)
        self.form_scroll = scroll
        # The keyboard shows only while an Urdu field has the focus: the form gets the room otherwise.
        for widget in self.inputs.values():
            widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.FocusIn and isinstance(watched, QWidget):
            urdu = any(watched is self.inputs[name] for name in URDU_FIELDS)
            self.keyboard.setVisible(urdu)
            self.form_scroll.ensureWidgetVisible(watched, 16, 16)
        return False

    def _value(self, name: str) -> object:
        widget = self.inputs[name]
        if isinstance(widget, QComboBox):
            return widget.currentData() or ""
        return widget.text()

    def _edited(self, name: str) -> None:
        w = self.ctx.wizard
        if w is None:
            return
        self.touched.add(name)
        problem = w.set(name, self._value(name))
        self._show(name, problem)
        for dep in w.dependents(name):
            if dep in self.touched:
                self._show(dep, w.check(dep))
        if self.same_address.isChecked() and name.startswith("present_address"):
            self._copy_address(True)
        if name in ("district", "tehsil"):  # the next level's choices follow the one above
            self._offer_places("tehsil" if name == "district" else "union_council")

    def _copy_address(self, on: bool) -> None:
        if not on:
            return
        for lang in ("ur", "en"):
            src = self.inputs[f"present_address_{lang}"]
            dst = self.inputs[f"permanent_address_{lang}"]
            assert isinstance(src, QLineEdit) and isinstance(dst, QLineEdit)
            dst.setText(src.text())
            if self.ctx.wizard is not None:
                self.ctx.wizard.set(f"permanent_address_{lang}", src.text())
            self._show(f"permanent_address_{lang}", None)

    def _show(self, name: str, problem: Problem | None) -> None:
        self.errors[name].setText("" if problem is None else self.ctx.tr.pick(problem.en, problem.ur))

    def show_problems(self, problems: list[Problem]) -> None:
        """After a blocked Next: every field's message, focus on the first."""
        for name in self.errors:
            self._show(name, None)
        for p in problems:
            if p.field in self.errors:
                self.touched.add(p.field)
                self._show(p.field, p)
        first = problems[0]
        self.message.setText(self.ctx.tr.pick(first.en, first.ur))
        if first.field in self.inputs:
            self.inputs[first.field].setFocus()

    def retranslate(self) -> None:
        self.title.setText(self.t("step.demo"))
        for name, label in self.labels.items():
            label.setText(self.t(f"f.{name}"))
        gender = self.inputs["gender"]
        assert isinstance(gender, QComboBox)
        for i, g in enumerate(Gender, start=1):
            gender.setItemText(i, g.ur if self.ctx.tr.urdu else g.en)
        self.same_address.setText(self.t("f.same_address"))
        w = self.ctx.wizard
        if w is not None:
            for name in self.touched:
                self._show(name, w.check(name))

    def enter(self) -> None:
        """Show the wizard's values (coming back from review to edit)."""
        w = self.ctx.wizard
        if w is None:
            return
        for name in ("district", "tehsil", "union_council"):
            self._offer_places(name)
        for name, widget in self.inputs.items():
            value = w.get(name, "")
            if isinstance(widget, QComboBox):
                widget.blockSignals(True)
                widget.setCurrentIndex(max(0, widget.findData(value)))
                widget.blockSignals(False)
            elif widget.text() != str(value):
                widget.setText(str(value))
        self.message.clear()

    def _offer_places(self, name: str) -> None:
        """Complete district, tehsil and union council from the policy's lists, when it has them."""
        w, edit = self.ctx.wizard, self.inputs.get(name)
        if w is None or not isinstance(edit, QLineEdit):
            return
        choices = w.place_choices(name)
        if not choices:
            edit.setCompleter(None)  # type: ignore[arg-type]  # Qt takes None to remove it; the stub says QCompleter
            return
        completer = QCompleter(choices, edit)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        edit.setCompleter(completer)

    def clear_pii(self) -> None:
        for widget in self.inputs.values():
            if isinstance(widget, QComboBox):
                widget.blockSignals(True)
                widget.setCurrentIndex(0)
                widget.blockSignals(False)
            else:
                widget.setText("")  # setText also drops the undo history
        for err in self.errors.values():
            err.clear()
        self.touched.clear()
        self.same_address.setChecked(False)
        self.message.clear()
