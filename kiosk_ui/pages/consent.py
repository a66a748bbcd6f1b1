"""Step 1: the kind of application, the purpose label read out to the citizen, and their consent.

The kinds offered, the purpose and the consent text (English and Urdu) come from the policy the wizard
was started with (``station.policy``): the page only renders them.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtWidgets import QButtonGroup, QCheckBox, QHBoxLayout, QLabel, QRadioButton, QVBoxLayout, QWidget

from kiosk_ui.context import KioskContext
from kiosk_ui.widgets import Page, message_label, title_label
from station.enrollment import ApplicationKind
from station.enrollment.problem import Problem
from station.wizard import Step


class ConsentPage(Page):
    holds_pii = False

    def __init__(self, ctx: KioskContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        lay = QVBoxLayout(self)
        self.title = title_label()
        lay.addWidget(self.title)
        self.kinds = QButtonGroup(self)
        row = QHBoxLayout()
        self.kind_buttons: dict[ApplicationKind, QRadioButton] = {}
        for i, kind in enumerate(ApplicationKind):
            rb = QRadioButton()
            rb.setObjectName(f"kind_{kind.value}")
            rb.setMinimumHeight(56)
            self.kinds.addButton(rb, i)
            self.kind_buttons[kind] = rb
            row.addWidget(rb)
            rb.toggled.connect(partial(self._kind_toggled, kind))
        lay.addLayout(row)
        self.purpose_title = title_label()
        self.purpose = QLabel()
        self.purpose.setObjectName("purposeLabel")
        self.purpose.setWordWrap(True)
        self.purpose.setStyleSheet("border:2px solid #24527a; padding:12px; background:#f4f8fc;")
        self.read = QLabel()
        self.read.setWordWrap(True)
        self.consent = QCheckBox()
        self.consent.setObjectName("consent")
        self.consent.setMinimumHeight(56)
        self.consent.toggled.connect(lambda on: self._set("consent", on))
        self.message = message_label()
        for w in (self.purpose_title, self.purpose, self.read, self.consent, self.message):
            lay.addWidget(w)
        lay.addStretch(1)

    def _kind_toggled(self, kind: ApplicationKind, on: bool) -> None:
        if on:
            self._set("kind", kind.value)

    def _set(self, name: str, value: object) -> None:
        w = self.ctx.wizard
        if w is not None and w.step is Step.KIND_CONSENT:
            w.set(name, value)
            self.message.clear()
            if name == "kind":
                self._show_texts()

    def _show_texts(self) -> None:
        w = self.ctx.wizard
        purpose = w.purpose_text() if w is not None else None
        consent = w.consent_text() if w is not None else None
        if purpose is None or consent is None:
            self.purpose.setText(self.ctx.purpose)
            return
        pick = self.ctx.tr.pick
        self.purpose.setText(f"{pick(purpose.en, purpose.ur)}\n\n{pick(consent.en, consent.ur)}")

    def retranslate(self) -> None:
        self.title.setText(self.t("kind.title"))
        for kind, rb in self.kind_buttons.items():
            rb.setText(kind.ur if self.ctx.tr.urdu else kind.en)
        self.purpose_title.setText(self.t("consent.purpose"))
        self._show_texts()
        self.read.setText(self.t("consent.read"))
        self.consent.setText(self.t("consent.check"))

    def enter(self) -> None:
        w = self.ctx.wizard
        if w is None:
            return
        kind = w.get("kind", "")
        offered = w.offered_kinds()
        self.kinds.setExclusive(False)
        for k, rb in self.kind_buttons.items():
            rb.setChecked(k.value == kind)
            rb.setVisible(k in offered)
        self.kinds.setExclusive(True)
        self.consent.setChecked(bool(w.get("consent", False)))
        self._show_texts()

    def show_problems(self, problems: list[Problem]) -> None:
        first = problems[0]
        self.message.setText(self.ctx.tr.pick(first.en, first.ur))

    def clear_pii(self) -> None:
        self.kinds.setExclusive(False)
        for rb in self.kind_buttons.values():
            rb.blockSignals(True)
            rb.setChecked(False)
            rb.blockSignals(False)
        self.kinds.setExclusive(True)
        self.consent.blockSignals(True)
        self.consent.setChecked(False)
        self.consent.blockSignals(False)
        self.message.clear()
