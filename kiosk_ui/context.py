"""What every page of the kiosk shares: the station home and config, the language, the logged-in operator,
the wizard, the background threads, and the services they call."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from kiosk_ui.i18n import Translator
from kiosk_ui.services import KioskServices
from kiosk_ui.workers import CameraWorker, DeviceThread, ScannerWorker, TaskRunner
from station.auth import Operator
from station.home import StationConfig, StationHome
from station.wizard import Wizard

DEFAULT_PURPOSE = (
    "Issue of a national identity card: the photograph, fingerprints and details are used only to"
    " register and verify the citizen's identity."
)


@dataclass
class DemoInfo:
    operator_id: str
    pin: str


@dataclass
class KioskContext:
    home: StationHome
    config: StationConfig
    services: KioskServices
    tr: Translator = field(default_factory=Translator)
    tasks: TaskRunner = field(default_factory=TaskRunner)
    scanner: DeviceThread | None = None
    camera: DeviceThread | None = None
    operator: Operator | None = None
    wizard: Wizard | None = None
    demo: DemoInfo | None = None
    today: dt.date | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scanner_worker(self) -> ScannerWorker:
        assert self.scanner is not None and isinstance(self.scanner.worker, ScannerWorker)
        return self.scanner.worker

    @property
    def camera_worker(self) -> CameraWorker:
        assert self.camera is not None and isinstance(self.camera.worker, CameraWorker)
        return self.camera.worker

    @property
    def purpose(self) -> str:
        return str(self.config.extra.get("purpose_label", DEFAULT_PURPOSE))

    def new_wizard(self) -> Wizard:
        """A wizard for the next citizen, under the policy in force now (a newer one waits for the next)."""
        assert self.operator is not None
        self.wizard = Wizard(
            operator_id=self.operator.operator_id,
            station_id=self.config.station_id or "unprovisioned",
            purpose=self.purpose,
            today=self.today,
            policy=self.services.policy().policy,
        )
        return self.wizard

    def start_devices(self, *, trace: Any = None) -> None:
        from drivers.r30x import rates

        rates.use_file(self.home.root / "device-rates.json")  # the scanner's rate, kept over restarts
        if self.scanner is None:
            self.scanner = DeviceThread(ScannerWorker(self.config.scanner_url, trace=trace), "scanner")
        if self.camera is None:
            self.camera = DeviceThread(CameraWorker(self.config.camera_url), "camera")

    def stop(self) -> None:
        for dev in (self.scanner, self.camera):
            if dev is not None:
                dev.stop()
        self.scanner = self.camera = None
        self.tasks.stop()


def request_capture(ctx: KioskContext, job: str) -> None:
    """Ask the scanner thread for one capture (queued into its event loop)."""
    from PySide6.QtCore import QTimer

    worker = ctx.scanner_worker
    QTimer.singleShot(0, worker, lambda: worker.capture(job))


def cancel_capture(ctx: KioskContext) -> None:
    if ctx.scanner is not None:
        ctx.scanner_worker.cancel()
