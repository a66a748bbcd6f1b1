"""``station provision`` and ``station sync once|run|status``: the agent's command line.

    station provision --central https://central:8443 --token-file token.txt --ca-fingerprint AB:CD:...
                      [--station-id ID] [--enroll-url URL] [--renew]
    station sync once      # upload everything queued; exit 0 only when all of it is acked
    station sync run       # the daemon (systemd Type=notify, watchdog, SIGTERM stops it)
    station sync status    # queue counts, last sync, certificate expiry

Settings come from ``station.toml``: ``central_url``, ``chunk_size``, ``heartbeat_seconds`` and an
optional ``[sync]`` table (``poll_seconds``, ``backoff_base``, ``backoff_cap``,
``not_authorised_retry_seconds``, ``rejected_retry_seconds``, ``timeout_seconds``).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from station.home import StationHome
from station.sdnotify import Notifier
from sync.agent.agent import Agent, AgentSettings, Credentials, mtls_client_factory
from sync.agent.heartbeat import device_state
from sync.agent.provision import ProvisionError, provision

log = logging.getLogger("sync.agent")


def _home(ctx: click.Context) -> StationHome:
    home = ctx.obj.home
    assert isinstance(home, StationHome)
    return home


@click.command("provision")
@click.option(
    "--central", "central_url", default=None, help="Central's ingest URL, e.g. https://central:8443."
)
@click.option(
    "--token-file",
    type=click.File("r"),
    default=None,
    help="Read the one-time enrollment token from this file ('-': stdin), kept off the command line.",
)
@click.option(
    "--token",
    default=None,
    help="Deprecated: the token in the process list and shell history; use --token-file.",
)
@click.option(
    "--ca-fingerprint", default=None, help="SHA-256 of central's CA (from 'central ca fingerprint')."
)
@click.option("--station-id", default=None, help="This station's id (default: the one in station.toml).")
@click.option("--enroll-url", default=None, help="Enrollment listener (default: central's host, port + 1).")
@click.option("--renew", is_flag=True, help="Enroll the existing identity key again (already provisioned).")
@click.option(
    "--key-backend",
    type=click.Choice(["auto", "file", "systemd-creds"]),
    default="auto",
    show_default=True,
    help="For a new station: keys sealed with systemd-creds (TPM2 when present) when available, else files.",
)
@click.option("--scanner", "scanner_url", default=None, help="Scanner URL (default: the one detected).")
@click.option("--camera", "camera_url", default=None, help="Camera URL (default: the one detected).")
@click.option("--skip-devices", is_flag=True, help="Do not detect and test-capture the scanner and camera.")
@click.pass_context
def provision_cmd(
    ctx: click.Context,
    central_url: str | None,
    token_file: Any,
    token: str | None,
    ca_fingerprint: str | None,
    station_id: str | None,
    enroll_url: str | None,
    renew: bool,
    key_backend: str,
    scanner_url: str | None,
    camera_url: str | None,
    skip_devices: bool,
) -> None:
    """Enroll this station with the central office (a technician's job).

    \b
    Run without options on the station's own screen and it asks for what it needs:
    station id, central URL, the CA fingerprint and the one-time token from central ops.
    It then finds the scanner and camera, test-captures with each, and only then contacts
    central (a failed device does not spend the token). On an appliance the result is
    /etc/station/station.toml and keys sealed with systemd-creds (TPM2 when present).
    """
    from station.devicetest import detect, test_camera, test_scanner

    home = _home(ctx)
    interactive = sys.stdin.isatty()
    cfg = home.load_config() if home.exists() else None
    if station_id is None and (cfg is None or not cfg.station_id):
        station_id = _ask(
            interactive, "Station id (as agreed with central ops, e.g. uc-lhr-0421-01)", "--station-id"
        )
    central_url = central_url or _ask(
        interactive, "Central URL (e.g. https://central.example:8443)", "--central"
    )
    ca_fingerprint = ca_fingerprint or _ask(
        interactive, "Central CA fingerprint (SHA256:...)", "--ca-fingerprint"
    )
    if token_file is not None:
        if token is not None:
            raise click.UsageError("Give the token once: --token-file or (deprecated) --token.")
        token = token_file.readline(256).strip() or None
        if token is None:
            raise click.UsageError("The token file is empty: paste the token from 'central token new'.")
    elif token is not None:
        click.echo(
            "warning: --token is deprecated: a token on the command line shows in the process list and the"
            " shell history; use --token-file FILE (or --token-file - to read it from stdin).",
            err=True,
        )
    token = token or _ask(interactive, "One-time enrollment token", "--token-file", hide=True)

    if not skip_devices and not renew:
        found_scanner, found_camera = detect()
        scanner_url = scanner_url or found_scanner or (cfg.scanner_url if cfg else None)
        camera_url = camera_url or found_camera or (cfg.camera_url if cfg else None)
        problems = []
        for name, url in (("scanner", scanner_url), ("camera", camera_url)):
            if not url:
                problems.append(f"no {name} found: plug it in (station device list) or pass --{name} URL")
        if not problems:
            assert scanner_url is not None and camera_url is not None
            for result in (test_scanner(scanner_url, prompt=click.echo), test_camera(camera_url)):
                mark = "OK  " if result.ok else "FAIL"
                click.echo(f"{mark} {result.name:<8} {result.url}: {result.detail}")
                if not result.ok:
                    problems.append(f"the {result.name} test failed: {result.detail}")
        if problems:
            raise click.ClickException(
                "; ".join(problems) + ". Nothing was sent to central: fix this and run provision again"
                " (or --skip-devices to provision now and test later with 'station doctor')."
            )
    if key_backend == "auto":
        from station.keys import SystemdCredsBackend

        key_backend = "systemd-creds" if SystemdCredsBackend.available() else "file"
    done = provision(
        home,
        central_url=central_url,
        token=token,
        ca_fingerprint=ca_fingerprint,
        station_id=station_id,
        enroll_url=enroll_url,
        renew=renew,
        key_backend=key_backend,
    )
    from station.session import open_station

    with open_station(home) as station:
        if scanner_url or camera_url:
            import dataclasses

            updated = dataclasses.replace(
                station.config,
                scanner_url=scanner_url or station.config.scanner_url,
                camera_url=camera_url or station.config.camera_url,
            )
            home.save_config(updated)
        station.audit.append("provisioned", central=done.central_id, suite=done.hpke_suite)
        backend = station.config.key_backend
    click.echo(f"Provisioned station {done.station_id} with central {done.central_id} ({done.central_url}).")
    click.echo(f"Certificate valid until {done.cert_not_after}; packets are sealed with {done.hpke_suite}.")
    click.echo(f"Configuration: {home.config_path}; keys: {backend} backend. Check it all: station doctor")


def _ask(interactive: bool, question: str, option: str, *, hide: bool = False) -> str:
    if not interactive:
        raise click.UsageError(f"{option} is required (or run 'station provision' on a terminal to be asked)")
    answer: str = click.prompt(question, hide_input=hide).strip()
    return answer


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def build_agent(
    home: StationHome, *, notifier: Notifier | None = None, stop_event: threading.Event | None = None
) -> tuple[Agent, Callable[[], None]]:
    """An agent on this station's store, keys and ``pki/``; and the function that closes it all."""
    from station.session import open_station

    station = open_station(home)
    try:
        cfg = station.config
        if not cfg.central_url or not station.station_id:
            raise ProvisionError(
                "this station is not provisioned (no central URL): run 'station provision'"
                " (a technician's job)",
                code="sync.not_provisioned",
            )
        creds = Credentials.load(home.pki_dir)
        sync_table = cfg.extra.get("sync", {})
        if not isinstance(sync_table, dict):
            raise ProvisionError("[sync] in station.toml must be a table", code="config.invalid")
        try:
            settings = AgentSettings.from_config(cfg.chunk_size, cfg.heartbeat_seconds, sync_table)
        except ValueError as exc:
            raise ProvisionError(f"station.toml: {exc}", code="config.invalid") from exc
        agent = Agent(
            store=station.store,
            audit=station.audit,
            key=station.keys.identity_key(),
            station_id=station.station_id,
            credentials=creds,
            client_factory=mtls_client_factory(cfg.central_url, settings.timeout_seconds),
            settings=settings,
            devices=lambda: {
                "scanner": device_state(cfg.scanner_url),
                "camera": device_state(cfg.camera_url),
            },
            disk_path=home.root,
            notifier=notifier,
            stop_event=stop_event,
        )
    except BaseException:
        station.close()
        raise

    def close() -> None:
        agent.close()
        station.close()

    return agent, close


@click.group("sync")
def sync_group() -> None:
    """Upload sealed packets to central over mutual TLS (the sync agent)."""


@sync_group.command("once")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
@click.pass_context
def once_cmd(ctx: click.Context, verbose: bool) -> None:
    """Upload everything queued; exit 0 only when everything queued is acknowledged."""
    _setup_logging(verbose)
    agent, close = build_agent(_home(ctx))
    try:
        result = agent.once()
        counts = agent.store.counts()
        warning = agent.clock_warning()
    finally:
        close()
    click.echo(
        f"acked {len(result.acked)} now; queue: {counts['sealed'] + counts['uploading']} pending,"
        f" {counts['acked']} acked, {counts['purged']} purged"
    )
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if not result.ok:
        click.echo(f"not everything was delivered: {agent.describe(result)}", err=True)
        ctx.exit(1)


@sync_group.command("run")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
@click.pass_context
def run_cmd(ctx: click.Context, verbose: bool) -> None:
    """Run the sync agent until SIGTERM (systemd Type=notify; pings the watchdog)."""
    _setup_logging(verbose)
    stop = threading.Event()
    agent, close = build_agent(_home(ctx), notifier=Notifier(), stop_event=stop)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.run()
    finally:
        close()


@sync_group.command("status")
@click.pass_context
def status_cmd(ctx: click.Context) -> None:
    """Queue counts, last successful sync and certificate expiry (no network)."""
    from station.session import open_station

    home = _home(ctx)
    with open_station(home) as station:
        counts = station.store.counts()
        last = station.store.meta_get("last_sync_at") or "never"
        central = station.config.central_url or "(not provisioned)"
    click.echo(f"central:   {central}")
    click.echo(f"pending:   {counts['sealed'] + counts['uploading']}  acked: {counts['acked']}")
    click.echo(f"last sync: {last}")
    try:
        cert = Credentials.load(home.pki_dir).cert()
        click.echo(f"certificate valid until {cert.not_valid_after_utc.isoformat()}")
    except ProvisionError as exc:
        click.echo(exc.message)


@sync_group.command("receipt")
@click.argument("packet_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.pass_context
def receipt_cmd(ctx: click.Context, packet_id: str, as_json: bool) -> None:
    """Show central's signed receipt for PACKET_ID, checked against central's receipt key.

    Exit 1 while central has not acknowledged the packet yet."""
    import json

    from station.session import open_station
    from sync.common.receipt import ReceiptError, verify_receipt

    home = _home(ctx)
    credentials = Credentials.load(home.pki_dir)
    with open_station(home, integrity_check=False) as station:
        row = station.store.packet(packet_id)
        data = station.store.receipt(packet_id)
    if data is None:
        click.echo(f"packet {packet_id} is {row.state}: central has not acknowledged it yet", err=True)
        ctx.exit(1)
        return
    try:
        receipt = verify_receipt(data, credentials.receipt_key)
    except ReceiptError as exc:
        raise click.ClickException(f"the stored receipt does not verify ({exc}): call a technician") from exc
    fields = {
        "packet_id": receipt.packet_id,
        "station_id": receipt.station_id,
        "sha256": receipt.sha256,
        "size": receipt.size,
        "received_at": receipt.received_at,
        "central_id": receipt.central_id,
        "state": row.state,
        "signature": "valid (central receipt key)",
    }
    if as_json:
        click.echo(json.dumps(fields, sort_keys=True))
        return
    click.echo("CENTRAL RECEIPT")
    for name, value in fields.items():
        click.echo(f"{name:<12} {value}")
