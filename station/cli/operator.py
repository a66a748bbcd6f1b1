"""``station operator``: onboard and manage operators (a supervisor's job; PINs are never echoed).

    station operator add ID [--role operator|supervisor|technician] [--finger-from URL]...
    station operator list
    station operator set-pin ID
    station operator enroll-finger ID --finger-from URL
    station operator unlock ID | disable ID | enable ID

``--finger-from`` captures the operator's finger on a scanner (``usb://298d:1010``,
``serial:///dev/station-scanner``, ``sim://r30x``) and stores its template, encrypted with the rest.
"""

from __future__ import annotations

import datetime as dt

import click

from station.auth import AuthError, OperatorDirectory, OperatorFile, Role, check_pin


def _directory(ctx: click.Context) -> OperatorDirectory:
    home = ctx.obj.home
    cfg = home.load_config()
    return OperatorDirectory(OperatorFile.for_home(home, backend=cfg.key_backend))


def _audit(ctx: click.Context, event: str, operator_id: str, **fields: str | int) -> None:
    """Record an operator change in the station's audit chain (ids and codes only)."""
    from station.session import open_station

    with open_station(ctx.obj.home, integrity_check=False) as station:
        station.audit.append(event, operator=operator_id, by="cli", **fields)


def _ask_pin(pin: str | None) -> str:
    if pin is not None:
        return check_pin(pin)
    while True:
        first = click.prompt("PIN", hide_input=True)
        try:
            check_pin(first)
        except AuthError as exc:
            click.echo(exc.message, err=True)
            continue
        if click.prompt("PIN again", hide_input=True) == first:
            return str(first)
        click.echo("The two PINs differ: type them again.", err=True)


def _capture_template(url: str, trace: bool) -> bytes:
    """Capture one finger on ``url`` and make its template (drivers' matcher format)."""
    import sys

    from drivers.base import FingerprintScanner
    from drivers.url import open_device

    click.echo(f"Put the operator's finger on the scanner ({url})...", err=True)
    device = open_device(url, trace=sys.stderr if trace else None)
    try:
        if not isinstance(device, FingerprintScanner):
            raise click.ClickException(f"{url} is not a fingerprint scanner.")
        image = device.capture(timeout=30.0)
    finally:
        device.close()
    from drivers.match import template_from_image

    return bytes(template_from_image(image.pixels))


@click.group("operator")
def operator_group() -> None:
    """Add and manage operators (supervisor)."""


@operator_group.command("add")
@click.argument("operator_id")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), default=Role.OPERATOR.value, show_default=True
)
@click.option(
    "--pin", default=None, help="The PIN (prompted, hidden, when not given; avoid it on shared shells)."
)
@click.option(
    "--finger-from", "finger_urls", multiple=True, help="Scanner URL to enroll a finger from (repeatable)."
)
@click.option(
    "--by", "created_by", default="cli", show_default=True, help="Id of the supervisor adding them."
)
@click.option("--trace", is_flag=True, help="Hex-dump the scanner's wire traffic to stderr.")
@click.pass_context
def add_cmd(
    ctx: click.Context, operator_id: str, role: str, pin: str | None, finger_urls: tuple[str, ...],
    created_by: str, trace: bool,
) -> None:  # fmt: skip
    """Add an operator with a PIN and (optionally) enrolled fingers."""
    directory = _directory(ctx)
    secret = _ask_pin(pin)
    templates = [_capture_template(url, trace) for url in finger_urls]
    op = directory.add(operator_id, secret, Role(role), templates=templates, created_by=created_by)
    _audit(ctx, "operator.add", op.operator_id, role=op.role.value)
    click.echo(f"Operator {op.operator_id} added ({op.role.value}, {len(op.templates)} finger(s)).")
    if not op.templates:
        click.echo(
            "No finger enrolled yet: they cannot log in to the kiosk until one is (enroll-finger).", err=True
        )


@operator_group.command("enroll-finger")
@click.argument("operator_id")
@click.option("--finger-from", "finger_url", required=True, help="Scanner URL.")
@click.option("--trace", is_flag=True, help="Hex-dump the scanner's wire traffic to stderr.")
@click.pass_context
def enroll_finger_cmd(ctx: click.Context, operator_id: str, finger_url: str, trace: bool) -> None:
    """Enroll one more finger for an operator."""
    n = _directory(ctx).add_template(operator_id, _capture_template(finger_url, trace))
    _audit(ctx, "operator.finger", operator_id, fingers=n)
    click.echo(f"Operator {operator_id} now has {n} finger(s).")


@operator_group.command("list")
@click.pass_context
def list_cmd(ctx: click.Context) -> None:
    """Operators, roles, fingers, and whether each is enabled or locked (no PINs, no templates)."""
    now = dt.datetime.now(dt.UTC).timestamp()
    ops = _directory(ctx).all()
    if not ops:
        click.echo("No operators yet: add a supervisor first (station operator add ID --role supervisor).")
        return
    click.echo(f"{'id':<20} {'role':<11} {'fingers':>7}  state")
    for op in ops:
        state = "disabled" if not op.enabled else ("locked" if op.locked_until > now else "active")
        click.echo(f"{op.operator_id:<20} {op.role.value:<11} {len(op.templates):>7}  {state}")


@operator_group.command("set-pin")
@click.argument("operator_id")
@click.option("--pin", default=None, help="The new PIN (prompted, hidden, when not given).")
@click.pass_context
def set_pin_cmd(ctx: click.Context, operator_id: str, pin: str | None) -> None:
    """Give an operator a new PIN (also clears a lockout)."""
    directory = _directory(ctx)
    directory.set_pin(operator_id, _ask_pin(pin))
    _audit(ctx, "operator.pin", operator_id)
    click.echo(f"New PIN set for {operator_id}.")


@operator_group.command("unlock")
@click.argument("operator_id")
@click.pass_context
def unlock_cmd(ctx: click.Context, operator_id: str) -> None:
    """Clear an operator's lockout after failed attempts."""
    _directory(ctx).unlock(operator_id)
    _audit(ctx, "operator.unlock", operator_id)
    click.echo(f"{operator_id} unlocked.")


@operator_group.command("disable")
@click.argument("operator_id")
@click.pass_context
def disable_cmd(ctx: click.Context, operator_id: str) -> None:
    """Stop an operator from logging in (the record is kept for the audit trail)."""
    _directory(ctx).set_enabled(operator_id, False)
    _audit(ctx, "operator.disable", operator_id)
    click.echo(f"{operator_id} disabled.")


@operator_group.command("enable")
@click.argument("operator_id")
@click.pass_context
def enable_cmd(ctx: click.Context, operator_id: str) -> None:
    """Allow a disabled operator to log in again."""
    _directory(ctx).set_enabled(operator_id, True)
    _audit(ctx, "operator.enable", operator_id)
    click.echo(f"{operator_id} enabled.")
