"""The ``central`` command: CA and tokens, the ingest server, ops status and the back office.

Every command takes ``--home DIR`` (default ``$CENTRAL_HOME``, else ``/var/lib/central``).

\b
First steps:
  central --home /tmp/central ca init
  central --home /tmp/central ca fingerprint
  central --home /tmp/central token new --station uc-lhr-0421-01 \
      --district Lahore --tehsil "Lahore City" --union-council "UC-421"
  central --home /tmp/central serve --port 8443
  central --home /tmp/central status
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from packetformat.errors import PacketFormatError
from packetformat.packet import SUITES
from sync.central.cli_station import station_group, status_cmd
from sync.central.home import CentralError, CentralHome, resolve_home
from sync.central.p12_password import note_no_p12, p12_password_option, read_p12_password
from sync.common.wire import DEFAULT_INGEST_PORT, DEFAULT_MAX_PACKET_BYTES, valid_station_id
from sync.errors import SyncError
from sync.pki.ca import cert_pem, load_cert
from sync.pki.ca import fingerprint as cert_fingerprint
from sync.pki.tokens import parse_duration


def _home(ctx: click.Context) -> CentralHome:
    home = ctx.obj
    assert isinstance(home, CentralHome)
    return home


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Central home directory (default: $CENTRAL_HOME, then /var/lib/central).",
)
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """Central office: private CA, ingest server, ops status and back office."""
    ctx.obj = CentralHome(resolve_home(home))


# -- CA ----------------------------------------------------------------------------------------
@cli.group("ca")
def ca_group() -> None:
    """Create the private CA and show its fingerprint."""


def hpke_key_warning(path: Path) -> str:
    """What ``init`` and every ``serve`` start say while the back office's key is in the home."""
    return (
        f"the HPKE private key is still in {path}: whoever holds it opens every packet. Move it offline"
        " now (the back office's machine, encrypted media) and delete it here; 'central serve' never"
        " needs it."
    )


def _init(
    ctx: click.Context,
    name: str,
    suite: str,
    server_names: tuple[str, ...],
    cert_days: int,
    database: str | None = None,
) -> None:
    from sync.central.authority import init_home

    home = _home(ctx)
    result = init_home(
        home, name=name, suite=suite, server_names=server_names, cert_days=cert_days, database_url=database
    )
    click.echo(f"central home:      {home.root}")
    if database:
        from sync.central.database import describe_url

        click.echo(f"storage:           PostgreSQL, {describe_url(database)} (schema migrated)")
    else:
        click.echo(f"storage:           embedded SQLite ({home.db})")
    click.echo(f"central id:        {result.central_id}")
    click.echo(f"HPKE suite:        {result.hpke_suite}")
    click.echo(f"WARNING: {hpke_key_warning(result.backoffice_key)}", err=True)
    click.echo("give technicians this CA fingerprint for 'station provision --ca-fingerprint':")
    click.echo(f"SHA256:{result.ca_fingerprint}")


_init_options = [
    click.option("--name", default="Enrollment Central CA", show_default=True, help="CA common name."),
    click.option(
        "--suite",
        type=click.Choice(SUITES),
        default="x25519",
        show_default=True,
        help="HPKE suite for packets.",
    ),
    click.option(
        "--server-name", "server_names", multiple=True, help="Extra DNS name or IP for the server cert."
    ),
    click.option("--cert-days", type=click.IntRange(1, 825), default=30, show_default=True),
]


def _with_init_options(fn: Any) -> Any:
    for option in reversed(_init_options):
        fn = option(fn)
    return fn


@ca_group.command("init")
@_with_init_options
@click.pass_context
def ca_init(ctx: click.Context, name: str, suite: str, server_names: tuple[str, ...], cert_days: int) -> None:
    """Create the CA (EC P-256), server TLS cert, receipt key and HPKE key pair."""
    _init(ctx, name, suite, server_names, cert_days)


@cli.command("init")
@_with_init_options
@click.option(
    "--database",
    "database",
    metavar="URL",
    default=None,
    help="postgresql://USER@HOST:PORT/DBNAME for PostgreSQL (several nodes); leave out for the embedded"
    " SQLite database. Written to [storage] url WITHOUT a password.",
)
@click.pass_context
def init_cmd(
    ctx: click.Context,
    name: str,
    suite: str,
    server_names: tuple[str, ...],
    cert_days: int,
    database: str | None,
) -> None:
    """Prepare a new central home (same as 'ca init', plus the choice of database).

    \b
    Storage: with --database postgresql://central@db.example:5432/central the schema is migrated
    and the URL is written as [storage] url in central.toml; without it central uses an embedded
    SQLite database in the home. $CENTRAL_DATABASE_URL, when set, overrides [storage] url.

    \b
    A password never goes into central.toml, and a URL that holds one is refused. Give it to
    libpq instead, in one of:
      - a passfile: ~/.pgpass of the service's user, or $PGPASSFILE (mode 0600),
        one line HOST:PORT:DBNAME:USER:PASSWORD;
      - a service file (~/.pg_service.conf or $PGSERVICEFILE) and the URL postgresql:///?service=NAME;
      - $PGPASSWORD, or the whole URL in $CENTRAL_DATABASE_URL, in the service's environment
        (a systemd EnvironmentFile= readable by root only).
    """
    _init(ctx, name, suite, server_names, cert_days, database)


@ca_group.command("fingerprint")
@click.pass_context
def ca_fingerprint(ctx: click.Context) -> None:
    """Print the CA certificate's SHA-256 fingerprint (for 'station provision')."""
    home = _home(ctx)
    home.require()
    click.echo(f"SHA256:{cert_fingerprint(load_cert(home.ca_cert))}")


# -- tokens, issuance, revocation ---------------------------------------------------------------
@cli.group("token")
def token_group() -> None:
    """One-time enrollment tokens."""


@token_group.command("new")
@click.option("--station", "station_id", required=True, help="Station id the token is for.")
@click.option("--district", default=None, help="District the station stands in (registry).")
@click.option("--tehsil", default=None, help="Tehsil the station stands in.")
@click.option("--union-council", "union_council", default=None, help="Union council the station serves.")
@click.option("--label", default="", help="Free text shown to ops (a building, a counter; no names).")
@click.option("--ttl", default="7d", show_default=True, help="Validity: e.g. 30m, 24h, 7d.")
@click.pass_context
def token_new(
    ctx: click.Context,
    station_id: str,
    district: str | None,
    tehsil: str | None,
    union_council: str | None,
    label: str,
    ttl: str,
) -> None:
    """Create a one-time token for STATION and record where it stands; the token is on the last line.

    A station new to the registry needs --district, --tehsil and --union-council; for one already
    registered they may be left out (a new token after a repair) or given to correct the record.
    """
    from sync.central.authority import Authority
    from sync.central.cli_station import location_from
    from sync.central.database import open_backend
    from sync.central.registry import prepare_token

    if not valid_station_id(station_id):
        raise click.BadParameter(
            "letters, digits, '.', '_' and '-' only (at most 64)", param_hint="--station"
        )
    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ttl") from exc
    home = _home(ctx)
    home.require()
    location = location_from(district, tehsil, union_council, label)
    backend = open_backend(home)
    try:
        prepare_token(backend.storage, station_id, location)
        token = Authority(home, tokens=backend.tokens, registry=backend.registry).new_token(
            station_id, seconds
        )
    finally:
        backend.close()
    expires = dt.datetime.fromtimestamp(time.time() + seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    click.echo(f"one-time enrollment token for {station_id}, valid until {expires}:")
    click.echo(token)


@cli.command("issue")
@click.option("--station", "station_id", required=True)
@click.option("--csr", "csr_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--days", type=float, default=None, help="Lifetime (default from central.toml, 30).")
@click.pass_context
def issue_cmd(ctx: click.Context, station_id: str, csr_path: Path, out: Path, days: float | None) -> None:
    """Issue a station certificate from a CSR file without a token (at the office)."""
    from sync.central.authority import Authority
    from sync.central.database import open_backend
    from sync.central.registry import retired_message

    home = _home(ctx)
    home.require()
    backend = open_backend(home)
    try:
        if backend.storage.station_state(station_id) == "retired":
            raise CentralError(retired_message(station_id), code="registry.retired")
        authority = Authority(home, tokens=backend.tokens, registry=backend.registry)
        cert = authority.issue_from_csr(csr_path.read_text(), station_id, days=days)
        backend.storage.record_certificate(station_id, cert.not_valid_after_utc.timestamp(), time.time())
    finally:
        backend.close()
    out.write_bytes(cert_pem(cert))
    click.echo(f"issued {station_id} serial {cert.serial_number:x} until {cert.not_valid_after_utc:%Y-%m-%d}")


@cli.command("revoke")
@click.argument("target")
@click.pass_context
def revoke_cmd(ctx: click.Context, target: str) -> None:
    """Revoke every certificate of station TARGET (or urn:ops:NAME, or serial 0xHEX); new CRL."""
    from sync.central.authority import Authority
    from sync.central.database import open_backend

    home = _home(ctx)
    home.require()
    backend = open_backend(home)
    try:
        count = Authority(home, tokens=backend.tokens, registry=backend.registry).revoke(target)
        if count and valid_station_id(target):
            backend.storage.mark_revoked(target, time.time())
    finally:
        backend.close()
    if count == 0:
        raise CentralError(
            f"no unrevoked certificate for {target!r}: check the station id with 'central status'",
            code="registry.no_certificate",
        )
    click.echo(f"revoked {count} certificate(s) of {target}; CRL updated (a running server picks it up)")


@cli.command("ops-cert")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--days", type=float, default=365, show_default=True)
@p12_password_option
@click.pass_context
def ops_cert_cmd(ctx: click.Context, name: str, out: Path, days: float, p12_password_file: Any) -> None:
    """Issue an ops client certificate (dashboard, metrics) into OUT; a .p12 given a password."""
    from sync.central.authority import Authority

    password = read_p12_password(p12_password_file)
    for path in Authority(_home(ctx)).ops_cert(name, out, days=days, p12_password=password):
        click.echo(str(path))
    if password is None:
        note_no_p12()


# -- server ------------------------------------------------------------------------------------
@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_INGEST_PORT, show_default=True)
@click.option("--listen", default=None, help="HOST:PORT (overrides --host/--port).")
@click.option("--enroll-port", type=click.IntRange(0, 65535), default=None, help="Default: port + 1.")
@click.option(
    "--max-packet-bytes", type=click.IntRange(1024), default=DEFAULT_MAX_PACKET_BYTES, show_default=True
)
@click.option("-v", "--verbose", is_flag=True, help="Log requests' outcomes (codes, never PII).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the ports (SO_REUSEPORT); above 1 needs PostgreSQL.",
)
@click.pass_context
def serve_cmd(
    ctx: click.Context,
    host: str,
    port: int,
    listen: str | None,
    enroll_port: int | None,
    max_packet_bytes: int,
    verbose: bool,
    workers: int,
) -> None:
    """Run the ingest (mutual TLS) and enrollment listeners.

    Any number of 'central serve' processes, on one machine (--workers N) or on several behind a
    TCP load balancer, can share one PostgreSQL database; GET /v1/ready on the ingest port (with
    any certificate of this CA, e.g. an ops one) answers 200 while this node can serve.
    """
    from sync.central.server import ServeOptions, serve, url_host

    if listen:
        h, _, p = listen.rpartition(":")
        if not h or not p.isdigit():
            raise click.BadParameter(
                "use HOST:PORT, e.g. 127.0.0.1:8443 or [::1]:8443", param_hint="--listen"
            )
        host, port = h.strip("[]"), int(p)
    home = _home(ctx)
    home.require()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if home.backoffice_key.exists():
        # Once per start, on stderr for the person at the console and in the log for the journal.
        hpke_warning = hpke_key_warning(home.backoffice_key)
        click.echo(f"WARNING: {hpke_warning}", err=True)
        logging.getLogger("sync.central.serve").warning("%s", hpke_warning)

    def ready(h: str, p: int, e: int) -> None:
        click.echo(f"enrollment on https://{url_host(h)}:{e}")
        click.echo(f"listening on https://{url_host(h)}:{p}")
        sys.stdout.flush()

    options = ServeOptions(host=host, port=port, enroll_port=enroll_port, max_packet_bytes=max_packet_bytes)
    if workers > 1:
        from sync.central.workers import serve_workers

        serve_workers(home, options, workers, ready)
        return
    try:
        asyncio.run(serve(home, options, ready=ready))
    except OSError as exc:
        raise CentralError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose a free --port",
            code="central.listen",
        ) from exc


# -- ops: status and the station registry (sync/central/cli_station.py) --------------------------
# -- back office -------------------------------------------------------------------------------
@cli.command("open")
@click.argument("packet_id")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Export files here."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--station", "station_id", default=None, help="The station, when two used the same packet id.")
@click.pass_context
def open_cmd(
    ctx: click.Context,
    packet_id: str,
    key_path: Path,
    out: Path | None,
    as_json: bool,
    station_id: str | None,
) -> None:
    """Verify and decrypt one stored packet with the back-office HPKE key."""
    from sync.central.authority import read_hpke_private_key
    from sync.central.backoffice import export, image_hash_problems, open_stored, summarise

    home = _home(ctx)
    home.require()
    meta, document = open_stored(home, packet_id, read_hpke_private_key(key_path), station_id=station_id)
    checked, bad = image_hash_problems(document)
    meta["image_hashes"] = {"checked": checked, "mismatched": bad}
    summary = {"packet": meta, "document": summarise(document)}
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(f"packet {meta['packet_id']} from {meta['station_id']}: signature OK, decrypted")
        click.echo(f"image hashes: {checked} checked, {len(bad)} mismatched {' '.join(bad)}".rstrip())
        click.echo(json.dumps(summary["document"], ensure_ascii=False, indent=2, default=str))
    if out is not None:
        for path in export(document, meta, out):
            click.echo(f"wrote {path}", err=as_json)
    if bad:
        raise CentralError(
            f"{len(bad)} image(s) do not match their recorded SHA-256: the packet is damaged; do not use it",
            code="backoffice.image_hash",
        )


from sync.central.cli_backup import backup_cmd  # noqa: E402  (subcommands in their own modules)
from sync.central.cli_db import db_group  # noqa: E402
from sync.central.cli_export import export_cmd  # noqa: E402
from sync.central.cli_operator import operator_group  # noqa: E402
from sync.central.cli_outcome import outcome_group  # noqa: E402
from sync.central.cli_policy import policy_group  # noqa: E402

cli.add_command(db_group)
cli.add_command(backup_cmd)
cli.add_command(export_cmd)
cli.add_command(status_cmd)
cli.add_command(station_group)
cli.add_command(policy_group)
cli.add_command(operator_group)
cli.add_command(outcome_group)


def handled_errors() -> tuple[type[BaseException], ...]:
    """The errors the ``central`` command prints as one line instead of a traceback: the sync
    package's tree (central's, the PKI's, the receipts') and the packet format's."""
    return (SyncError, PacketFormatError)


def describe_error(exc: BaseException) -> str:
    """One line for a handled error: ``error [code]: message``."""
    assert isinstance(exc, SyncError | PacketFormatError)
    return f"error [{exc.code}]: {exc.message}"
