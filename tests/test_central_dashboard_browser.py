"""The ops dashboard in a real headless Chromium (Debian ``chromium`` + ``chromium-driver``, selenium).

The dashboard needs an ops client certificate. The test puts a small TLS-terminating proxy of its
own on loopback in front of the real ``central serve``: the browser speaks plain HTTP to the
proxy, and the proxy makes a mutual-TLS connection to central with the ops certificate that
``central ops-cert`` issued. 2,000 registered stations, one of them silent: the test finds it by
search, opens it, and pages through all 2,000.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

from sync.central.fleet import Location
from sync.central.home import CentralHome
from sync.central.storage import SqliteStorage
from sync.common.wire import Heartbeat
from tests.central_support import REPO, CentralProcess, make_home

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Debian chromium and chromium-driver are not installed (scripts/setup.sh installs them as root)",
)
STATIONS = 2000
SILENT = "uc-1234"


class OpsProxy:
    """Plain HTTP on loopback in, mutual TLS with the ops certificate out (bounded, threads)."""

    def __init__(self, upstream: str, ctx: ssl.SSLContext) -> None:
        host, port = upstream.removeprefix("https://").rsplit(":", 1)
        self.upstream = (host.strip("[]"), int(port))
        self.ctx = ctx
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = int(self.sock.getsockname()[1])
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            raw = socket.create_connection(self.upstream, timeout=30)
            upstream = self.ctx.wrap_socket(raw, server_hostname=self.upstream[0])
        except OSError:
            client.close()
            return
        client.settimeout(60)
        upstream.settimeout(60)
        t = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        t.start()
        try:
            self._pump(client, upstream)
            t.join(timeout=60)
        finally:
            upstream.close()
            client.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        self.thread.join(timeout=5)


def populate(home: CentralHome) -> None:
    """2,000 stations registered an hour ago and not yet called (new); uc-1234 last called 2 days ago."""
    now = time.time()
    storage = SqliteStorage(home.db, home.blobs, home.uploads)
    try:
        for i in range(STATIONS):
            sid = f"uc-{i:04d}"
            district = ("Lahore", "Kasur", "Okara", "Multan", "Sahiwal")[i % 5]
            registered = now - (5 * 86400 if sid == SILENT else 3600)
            storage.register_station(
                sid, Location.checked(district, f"{district} Tehsil", f"UC-{i}"), registered
            )
        storage.record_heartbeat(
            Heartbeat(SILENT, "2026-01-01T00:00:00Z", {"sealed": 2}, 3600.0, None, 10**10, {}, "0.1.0"),
            now - 2 * 86400,
        )
    finally:
        storage.close()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dash")
    home = make_home(root / "home")
    populate(home)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sync.central",
            "--home",
            str(home.root),
            "ops-cert",
            "olivia",
            "--out",
            str(root / "ops"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    ctx = ssl.create_default_context(cafile=str(home.ca_cert))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(str(root / "ops" / "olivia.crt"), str(root / "ops" / "olivia.key"))
    server = CentralProcess(home)
    proxy = OpsProxy(server.url, ctx)
    try:
        yield f"http://127.0.0.1:{proxy.port}"
    finally:
        proxy.close()
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_find_a_silent_station_and_page_through_2000(dashboard: str, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    assert isinstance(driver, WebDriver)
    wait = WebDriverWait(driver, 30)
    driver.get(f"{dashboard}/dashboard")
    assert "station sync status" in driver.title.lower()
    assert driver.find_element(By.CSS_SELECTOR, "#total b").text == str(STATIONS)
    assert driver.find_element(By.CSS_SELECTOR, "#state-trouble b").text == "1"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#ingest-chart rect.bar")) == 14
    districts = [
        e.text for e in driver.find_elements(By.CSS_SELECTOR, "#districts tr.district td:first-child")
    ]
    assert districts[0] == "Sahiwal"  # the district with a station in trouble first
    assert sorted(districts) == ["Kasur", "Lahore", "Multan", "Okara", "Sahiwal"]
    # the station in trouble comes first, before any search
    first = driver.find_element(By.CSS_SELECTOR, "#stations tr.station")
    assert first.get_attribute("data-station") == SILENT

    # find the silent station by search
    box = driver.find_element(By.ID, "q")
    box.send_keys(SILENT)
    driver.find_element(By.ID, "go").click()
    wait.until(lambda d: "q=uc-1234" in d.current_url)
    rows = driver.find_elements(By.CSS_SELECTOR, "#stations tr.station")
    assert [r.get_attribute("data-station") for r in rows] == [SILENT]
    assert "silent" in rows[0].find_element(By.CSS_SELECTOR, "td.alerts").text
    rows[0].find_element(By.TAG_NAME, "a").click()
    wait.until(lambda d: d.find_elements(By.ID, "station-id"))
    assert driver.find_element(By.ID, "station-id").text == SILENT
    assert "silent" in driver.find_element(By.ID, "station-detail").text
    assert "Sahiwal" in driver.find_element(By.ID, "station-detail").text

    # page through every station, following the "next" link
    seen: list[str] = []
    driver.get(f"{dashboard}/dashboard")
    for _ in range(STATIONS // 50 + 5):  # bounded: 40 pages expected
        seen += [
            r.get_attribute("data-station") or ""
            for r in driver.find_elements(By.CSS_SELECTOR, "#stations tr.station")
        ]
        links = driver.find_elements(By.ID, "next-page")
        if not links:
            break
        before = driver.find_element(By.ID, "page-info").text
        links[0].click()
        wait.until(lambda d, b=before: d.find_element(By.ID, "page-info").text != b)
    assert len(seen) == STATIONS and len(set(seen)) == STATIONS
    assert seen[0] == SILENT
    assert driver.find_element(By.ID, "page-info").text.startswith(
        f"page {STATIONS // 50} of {STATIONS // 50}"
    )
