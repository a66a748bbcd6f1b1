"""Technician commands for the appliance: ``update`` (signed bundles), ``doctor``, ``decommission``."""

from __future__ import annotations

from pathlib import Path

import click

from station.update import apply_bundle, installed_version, verify_bundle

_BUNDLE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("update")
def update_group() -> None:
    """Verify and apply update bundles signed by the vendor.

    \b
    A bundle (.esu) is installed only when its signature verifies with a vendor key installed on
    this station, its contents match what was signed, and its version is newer than the installed
    one. Anything else is refused and nothing changes.
    """


@update_group.command("verify")
@click.argument("bundle", type=_BUNDLE)
def update_verify_cmd(bundle: Path) -> None:
    """Check BUNDLE without installing it."""
    verified = verify_bundle(bundle)
    h = verified.header
    click.echo(f"package:   {h.package} {h.version} ({h.architecture})")
    click.echo(f"installed: {installed_version()}")
    click.echo(f"signed by: vendor key {verified.key_id}")
    click.echo(f"payload:   {h.payload_name}, {h.payload_size} bytes, sha256 {h.payload_sha256}")
    click.echo("OK: this update can be applied")


@update_group.command("apply")
@click.argument("bundle", type=_BUNDLE)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def update_apply_cmd(bundle: Path, yes: bool) -> None:
    """Verify BUNDLE, then install it (as root; the services restart on the new version)."""
    verified = verify_bundle(bundle)
    h = verified.header
    if not yes:
        click.confirm(f"Install {h.package} {h.version} (installed: {installed_version()})?", abort=True)
    header = apply_bundle(bundle)
    click.echo(f"Installed {header.package} {header.version}.")


_MARK = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL", "skip": "SKIP"}


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--skip-devices", is_flag=True, help="Do not open the scanner and camera (they may be in use).")
@click.pass_context
def doctor_cmd(ctx: click.Context, as_json: bool, skip_devices: bool) -> None:
    """Check configuration, keys, queue, audit, certificate, clock, disk, devices and central.

    Prints one line per check and, for each problem, what to do. Exit status 0 when nothing failed
    (warnings allowed), 1 otherwise.
    """
    import json

    from station.doctor import DEFAULT_CHECKS, DoctorContext, check_camera, check_scanner, run_checks

    checks = [c for c in DEFAULT_CHECKS if not (skip_devices and c in (check_scanner, check_camera))]
    findings = run_checks(DoctorContext(home=ctx.obj.home), checks)
    failed = [f for f in findings if f.status == "fail"]
    if as_json:
        click.echo(json.dumps({"ok": not failed, "checks": [f.as_dict() for f in findings]}, indent=2))
    else:
        for f in findings:
            click.echo(f"{_MARK[f.status]}  {f.name:<12} {f.detail}")
            if f.fix and f.status in ("warn", "fail"):
                click.echo(f"      {'':<12} -> {f.fix}")
        click.echo(
            "all checks passed" if not failed else f"{len(failed)} check(s) failed: fix them and run again"
        )
    ctx.exit(1 if failed else 0)


@click.command("decommission")
@click.option(
    "--force-unsynced",
    is_flag=True,
    help="Wipe even though packets central has not acknowledged would be lost.",
)
@click.option("--yes", is_flag=True, help="Do not ask to type the station id to confirm.")
@click.pass_context
def decommission_cmd(ctx: click.Context, force_unsynced: bool, yes: bool) -> None:
    """Destroy this station's keys and wipe its data (crypto-erase).

    \b
    Refuses while central has not acknowledged every packet, unless --force-unsynced.
    Afterwards the encrypted queue cannot be opened by anyone, with anything left on the machine.
    Ask central operations to revoke the station: central revoke STATION_ID
    """
    from station.decommission import decommission

    home = ctx.obj.home
    cfg = home.load_config()
    if not yes:
        typed = click.prompt(
            f"This destroys station {cfg.station_id}'s keys and data. Type its id to confirm"
        )
        if typed.strip() != cfg.station_id:
            raise click.ClickException("The id does not match: nothing was changed.")
    report = decommission(home, force_unsynced=force_unsynced)
    lost = "" if not report.pending else f" ({report.pending} unsynced packet(s) discarded)"
    click.echo(f"Destroyed keys: {', '.join(report.keys_destroyed) or 'none found'}{lost}.")
    click.echo(f"Removed {len(report.removed)} file(s) and folder(s) under {home.root}.")
    sid = report.station_id
    click.echo(f"Station {sid} is decommissioned. Ask central to run: central revoke {sid}")
