"""The console entry point shared by ``station`` and ``central``: errors become one clear line.

Click's usage errors keep their own message and exit status 2; the program's own errors (the
``handled`` types) print ``describe(error)`` and exit 1; Ctrl-C exits 130. Never a traceback for
an error a person can act on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import click


def run(
    group: click.Group,
    handled: tuple[type[BaseException], ...],
    describe: Callable[[BaseException], str],
) -> NoReturn:
    try:
        rv = group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except handled as exc:
        click.echo(describe(exc), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    # With standalone_mode=False click returns ctx.exit()'s code instead of exiting.
    sys.exit(rv if isinstance(rv, int) else 0)
