"""``central export``: packets to ANSI/NIST-ITL 1-2011 or ISO/IEC 19794 files, and ``--check FILE``.

\b
  central export --key /media/backoffice/hpke.key --out DIR PACKET_ID...
  central export --key KEY --out DIR --since 2026-12-01 --until 2026-12-31 --format iso19794
  central export --key KEY --out DIR --since 2026-12-01 --resume     (after a crash: same arguments)
  central export --check DIR/PACKET_ID.an2
"""

from __future__ import annotations

import sys
import zipfile
import zlib
from pathlib import Path

import click

from sync.central.home import CentralHome


def _check(path: Path) -> list[str]:
    from sync.central.export import ansi_nist_reader, iso19794
    from sync.central.export.errors import MalformedFile, ReadError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReadError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data.startswith(b"PK"):
        lines = []
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                for name in names:
                    if zf.getinfo(name).file_size > ansi_nist_reader.MAX_FILE:
                        raise MalformedFile(f"{name} is larger than {ansi_nist_reader.MAX_FILE} bytes")
                    body = zf.read(name)
                    if name.endswith(".fir"):
                        for f in iso19794.read_finger_record(body):
                            lines.append(
                                f"{name}: finger {f.position}  WSQ {f.width}x{f.height}  quality {f.quality}"
                            )
                    elif name.endswith(".fac"):
                        face = iso19794.read_face_record(body)
                        kind = {0: "basic", 1: "full frontal", 2: "token"}.get(face.image_type, "?")
                        lines.append(
                            f"{name}: face {kind}  JPEG {face.width}x{face.height}"
                            f"  {len(face.points)} feature points"
                        )
                    else:
                        raise MalformedFile(f"{name} is not an ISO/IEC 19794 record of this export")
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            KeyError,
            EOFError,
            RuntimeError,
            zlib.error,
        ) as exc:
            raise MalformedFile(f"{path} is not a readable ZIP: {exc}") from exc
        lines.append(f"OK: {len(names)} ISO/IEC 19794:2005 records")
        return lines
    return ansi_nist_reader.describe(ansi_nist_reader.read_transaction(data))


@click.command("export")
@click.argument("packet_ids", nargs=-1)
@click.option(
    "--key", "key_path", type=click.Path(dir_okay=False, path_type=Path), help="HPKE private key file."
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Directory for the files.")
@click.option("--since", default=None, help="Packets received on or after DATE (YYYY-MM-DD, UTC).")
@click.option("--until", default=None, help="... and on or before DATE.")
@click.option(
    "--format", "fmt", type=click.Choice(["ansi-nist", "iso19794"]), default="ansi-nist", show_default=True
)
@click.option(
    "--tot",
    default=None,
    help="ANSI/NIST Type of transaction (default: [export] tot in central.toml, else CNIC).",
)
@click.option("--resume", is_flag=True, help="Continue the export already in --out (after a crash).")
@click.option(
    "--check",
    "check_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read FILE strictly and describe it.",
)
@click.pass_context
def export_cmd(
    ctx: click.Context,
    packet_ids: tuple[str, ...],
    key_path: Path | None,
    out: Path | None,
    since: str | None,
    until: str | None,
    fmt: str,
    tot: str | None,
    resume: bool,
    check_file: Path | None,
) -> None:
    """Export packets for the identity authority's AFIS/ABIS and card production, or check a file."""
    if check_file is not None:
        if packet_ids or key_path or out:
            raise click.UsageError("--check FILE takes no packet ids, --key or --out")
        for line in _check(check_file):
            click.echo(line)
        return
    if key_path is None or out is None:
        raise click.UsageError("--key and --out are required (or --check FILE)")
    from sync.central.authority import read_hpke_private_key
    from sync.central.database import open_storage
    from sync.central.export.batch import ExportOptions, check_paths, export_packets, select

    home = ctx.obj
    assert isinstance(home, CentralHome)
    home.require()
    check_paths(home, key_path, out)
    key = read_hpke_private_key(key_path)
    if tot is None:
        tot = str(home.config().get("export", {}).get("tot", "CNIC"))
    storage = open_storage(home)
    try:
        ids = select(storage, packet_ids, since, until)
        options = ExportOptions(out=out, fmt=fmt, tot=tot, resume=resume)
        if sys.stderr.isatty():
            with click.progressbar(length=len(ids), label="exporting", file=sys.stderr) as bar:
                result = export_packets(
                    home,
                    key,
                    ids,
                    options,
                    storage=storage,
                    progress=lambda _p: bar.update(1),
                )
        else:
            result = export_packets(home, key, ids, options, storage=storage)
    finally:
        storage.close()
    resumed = f" ({result.skipped} already done before --resume)" if result.skipped else ""
    click.echo(f"exported {len(result.written)} of {len(ids)} packet(s) to {out} as {fmt}{resumed}")
    for pid, entry in result.failed.items():
        click.echo(f"FAILED {pid} [{entry['code']}]: {entry['reason']}")
    click.echo(f"manifest: {out / 'manifest.json'}  checksums: {out / 'SHA256SUMS'}")
    if result.failed:
        from sync.central.export.errors import ExportError

        raise ExportError(
            f"{len(result.failed)} packet(s) could not be exported (listed above and in the manifest): "
            "fix the cause and run again with --resume",
            code="export.incomplete",
        )
