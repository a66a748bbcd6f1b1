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
