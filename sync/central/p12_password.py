"""The password of an ops or back-office ``.p12`` bundle: from a file, stdin, the environment or a prompt.

Never from the command line (it would show in the process list and the shell history). Without any of
them and no terminal to ask on, no ``.p12`` is written at all: an unprotected bundle is a private key
anyone who copies the file can use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

ENV = "CENTRAL_P12_PASSWORD"
MIN_LENGTH = 8

F = TypeVar("F", bound=Callable[..., Any])


def p12_password_option(func: F) -> F:
    """``--p12-password-file FILE`` (``-``: stdin) on a command that writes a ``.p12``."""
    return click.option(
        "--p12-password-file",
        "p12_password_file",
        type=click.File("r"),
        default=None,
        help=f"Read the .p12 password from this file ('-': stdin); or set {ENV}; asked when on a terminal.",
    )(func)


def read_p12_password(source: Any) -> bytes | None:
    """The password to protect the bundle with, or None when there is no way to get one."""
    if source is not None:
        text: str = source.readline(1024).rstrip("\r\n")
    elif os.environ.get(ENV):
        text = os.environ[ENV]
    elif sys.stdin.isatty():
        text = click.prompt(".p12 password", hide_input=True, confirmation_prompt=True)
    else:
        return None
    if len(text) < MIN_LENGTH:
        raise click.UsageError(f"The .p12 password is too short: give at least {MIN_LENGTH} characters.")
    return text.encode()


def note_no_p12() -> None:
    click.echo(
        f"note: no .p12 written: a browser bundle needs a password; give --p12-password-file FILE"
        f" (or - for stdin) or set {ENV}.",
        err=True,
    )
