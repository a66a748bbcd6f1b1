"""Technician screen: devices, a test capture, the live serial trace, recent log lines (never PII),
the provisioning state, and the only way out of the kiosk."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from kiosk_ui.context import KioskContext, request_capture
from kiosk_ui.logbuffer import RingLog, TraceBuffer
from kiosk_ui.widgets import Page, big_button, title_label
from kiosk_ui.workers import FingerResult


def discover() -> list[str]:
    """URLs of what is plugged in (drivers.discovery), or why they cannot be listed."""
    from drivers import discovery

    try:
        found = discovery.discover()
    except Exception as exc:  # sysfs may be missing in a sandbox: say so, do not crash the screen
        return [f"(discovery failed: {type(exc).__name__})"]
    return [f"{getattr(d, 'kind', '')}  {getattr(d, 'url', d)}  {getattr(d, 'name', '')}" for d in found]


class TechnicianPage(Page):
    exit_requested = Signal()
    closed = Signal()

    def __init__(
        self, ctx: KioskContext, log: RingLog, trace: TraceBuffer, parent: QWidget | None = None
    ) -> None:
        super().__init__(ctx, parent)
        self.log, self.trace_buffer = log, trace
        lay = QVBoxLayout(self)
        self.title = title_label()
        lay.addWidget(self.title)
        grid = QGridLayout()
        self.heads = [QLabel() for _ in range(5)]
        self.devices = QPlainTextEdit()
        self.devices.setObjectName("techDevices")
        self.provisioning = QPlainTextEdit()
        self.provisioning.setObjectName("techProvisioning")
        self.trace = QPlainTextEdit()
        self.trace.setObjectName("techTrace")
        self.logs = QPlainTextEdit()
        self.logs.setObjectName("techLog")
        for box in (self.devices, self.provisioning, self.trace, self.logs):
            box.setReadOnly(True)
            box.setLayoutDirection(Qt.LayoutDirection.LeftToRight)
        self.capture_view = QLabel()
        self.capture_view.setFixedSize(160, 190)
        self.capture_view.setStyleSheet("border:1px solid #7a808a; background:white;")
        self.capture_info = QLabel()
        self.test_btn = big_button()
        self.test_btn.setObjectName("testCapture")
        grid.addWidget(self.heads[0], 0, 0)
        grid.addWidget(self.devices, 1, 0)
        grid.addWidget(self.heads[1], 0, 1)
        grid.addWidget(self.provisioning, 1, 1)
        grid.addWidget(self.heads[2], 2, 0)
        grid.addWidget(self.trace, 3, 0)
        grid.addWidget(self.heads[3], 2, 1)
        grid.addWidget(self.logs, 3, 1)
        side = QVBoxLayout()
        side.addWidget(self.heads[4])
        side.addWidget(self.capture_view)
        side.addWidget(self.capture_info)
        side.addWidget(self.test_btn)
        grid.addLayout(side, 1, 2, 3, 1)
        lay.addLayout(grid, 1)
        self.close_btn = big_button()
        self.exit_btn = big_button()
        self.exit_btn.setObjectName("exitKiosk")
        lay.addWidget(self.close_btn)
        lay.addWidget(self.exit_btn)
        self.test_btn.clicked.connect(lambda: request_capture(self.ctx, "test"))
        self.exit_btn.clicked.connect(self.exit_requested.emit)
        self.close_btn.clicked.connect(self.closed.emit)
        self.timer = QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(self._tick)

    def connect_scanner(self) -> None:
        w = self.ctx.scanner_worker
        w.captured.connect(self._on_captured)
        w.failed.connect(self._on_failed)

    def _on_failed(self, job: str, code: str, message: str) -> None:
        if job == "test":
            self.capture_info.setText(f"{code}: {message}")

    def _on_captured(self, result: object) -> None:
        if isinstance(result, FingerResult) and result.job == "test":
            self.capture_view.setPixmap(
                QPixmap.fromImage(result.preview).scaled(160, 190, Qt.AspectRatioMode.KeepAspectRatio)
            )
            h, w = result.pixels.shape[:2]
            self.capture_info.setText(f"{w}x{h}  NFIQ 2 {result.quality}  WSQ {len(result.wsq)} B")

    def retranslate(self) -> None:
        self.title.setText(self.t("tech.title"))
        for lbl, key in zip(
            self.heads,
            ("tech.devices", "tech.provisioning", "tech.trace", "tech.log", "tech.test_capture"),
            strict=True,
        ):
            lbl.setText(self.t(key))
        self.test_btn.setText(self.t("tech.test_capture"))
        self.exit_btn.setText(self.t("tech.exit"))
        self.close_btn.setText(self.t("status.close"))

    def enter(self) -> None:
        cfg = self.ctx.config
        self.devices.setPlainText(
            "\n".join([f"scanner  {cfg.scanner_url}", f"camera   {cfg.camera_url}", "", *discover()])
        )
        pki = self.ctx.home.pki_dir
        lines = [
            f"station_id   {cfg.station_id or '(not provisioned)'}",
            f"central_url  {cfg.central_url or '(not set)'}",
            f"key_backend  {cfg.key_backend}",
            f"home         {self.ctx.home.root}",
            f"pki files    {', '.join(sorted(p.name for p in pki.iterdir())) if pki.is_dir() else '(none)'}",
        ]
        self.provisioning.setPlainText("\n".join(lines))
        self._tick()
        self.timer.start()

    def leave(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        self.trace.setPlainText(self.trace_buffer.text())
        self.logs.setPlainText(self.log.text())

    def clear_pii(self) -> None:
        self.capture_view.clear()
        self.capture_info.clear()
