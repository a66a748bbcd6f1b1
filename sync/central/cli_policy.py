"""``central policy show [--json] | set FILE | history | diff V1 V2``: the policy central sends stations.

``set`` reads a JSON policy document (``central policy show --json`` prints one to start from),
checks it strictly, refuses one that would make an enrollment impossible, and stores it as the next
version; every station fetches it after its next heartbeat.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from station.policy import PolicyError
from station.policy.describe import describe
from sync.central.home import CentralError, CentralHome
from sync.central.policy import PolicyOffice


@contextmanager
def policy_office(ctx: click.Context) -> Iterator[PolicyOffice]:
    """The policy office over this home's storage (either backend), closed afterwards."""
    from sync.central.database import open_storage

    home = ctx.obj
    assert isinstance(home, CentralHome)
    home.require()
    storage = open_storage(home)
    try:
        yield PolicyOffice(home, storage)
    except PolicyError as exc:
        raise CentralError(exc.message, code=exc.code) from exc
    finally:
        storage.close()


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group("policy")
def policy_group() -> None:
    """The signed policy every station enforces: show, set, history, diff."""


@policy_group.command("show")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the policy document (a starting point for 'set')."
)
@click.pass_context
def show_cmd(ctx: click.Context, as_json: bool) -> None:
    """The policy in force (the built-in default until one is set)."""
    with policy_office(ctx) as office:
        policy = office.current()
        row = office.storage.policy_latest()
    if as_json:
        click.echo(json.dumps(policy.to_document(), ensure_ascii=False, indent=2))
        return
    for line in describe(policy):
        click.echo(line)
    if row is not None:
        click.echo(f"set {_when(row.set_at)} by {row.set_by}")


@policy_group.command("set")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def set_cmd(ctx: click.Context, file: Path) -> None:
    """Validate FILE (JSON) and make it the next policy version."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CentralError(
            f"{file} is not JSON ({exc}): fix it and run 'central policy set' again", code="policy.not_json"
        ) from exc
    with policy_office(ctx) as office:
        policy = office.set_policy(document, by="cli")
    click.echo(f"policy version {policy.version} set; stations fetch it after their next heartbeat")


@policy_group.command("history")
@click.pass_context
def history_cmd(ctx: click.Context) -> None:
    """Every policy version set at central, oldest first."""
    with policy_office(ctx) as office:
        rows = office.storage.policy_rows()
    if not rows:
        click.echo("no policy set yet: stations run on the built-in default (version 0)")
    for row in rows:
        click.echo(f"{row.version:>5}  {_when(row.set_at)}  {row.set_by}")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted path (``kinds.juvenile.bands[1].face``)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k in sorted(value):
            out.update(flatten(value[k], f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def diff_documents(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    fa, fb = flatten(a), flatten(b)
    lines = []
    for path in sorted(set(fa) | set(fb)):
        if path == "version":
            continue
        if path not in fa:
            lines.append(f"+ {path} = {json.dumps(fb[path], ensure_ascii=False)}")
        elif path not in fb:
            lines.append(f"- {path} = {json.dumps(fa[path], ensure_ascii=False)}")
        elif fa[path] != fb[path]:
            lines.append(
                f"~ {path}: {json.dumps(fa[path], ensure_ascii=False)} -> "
                f"{json.dumps(fb[path], ensure_ascii=False)}"
            )
    return lines


@policy_group.command("diff")
@click.argument("v1", type=click.IntRange(0))
@click.argument("v2", type=click.IntRange(0))
@click.pass_context
def diff_cmd(ctx: click.Context, v1: int, v2: int) -> None:
    """What changed from version V1 to V2 (0 is the built-in default)."""
    with policy_office(ctx) as office:
        a, b = office.policy(v1), office.policy(v2)
    for version, policy in ((v1, a), (v2, b)):
        if policy is None:
            raise CentralError(
                f"there is no policy version {version}: see 'central policy history'",
                code="policy.no_version",
            )
    assert a is not None and b is not None
    lines = diff_documents(a.to_document(), b.to_document())
    click.echo(f"policy {v1} -> {v2}: {len(lines)} change(s)")
    for line in lines:
        click.echo(line)
