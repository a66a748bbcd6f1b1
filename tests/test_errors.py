"""The one error tree: every code literal follows the convention, every error derives from its root.

A code is lowercase dotted segments (``device.r30x.checksum``): at least two segments of letters,
digits and underscores. The test reads the syntax tree of every module of ours and checks each
literal that becomes a code: a class's ``code = "..."``, a ``code="..."`` argument, and the
positional code of the few constructors that take it first (``CborError`` and its reader's
``_fail``). The constant parts of an f-string are checked as far as they go.

Each package has one root (``docs/errors.md``); every public exception class defined in a package
derives from that root. The kiosk's errors are the station's (it is the station's screen).
No code decides on an exception's message text: ``in str(exc)`` and friends are refused.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
# A code's prefix in an f-string (``f"device.reported.{status:#04x}"``): the part before the first
# placeholder must be whole segments followed by a dot, or a whole code.
PREFIX = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.$")
# The constructors that take the code as their first argument, and where (``_fail`` is the CBOR
# reader's; other modules' ``_fail`` helpers take a field name first).
POSITIONAL_CODE = {"CborError": None, "_fail": "packetformat/cbor.py"}
# The walk over the packages' modules and their error classes is the one scripts/error_tree.py writes
# docs/errors.md with, loaded from its file (scripts/ is not a package).
_SPEC = importlib.util.spec_from_file_location("error_tree", ROOT / "scripts" / "error_tree.py")
assert _SPEC is not None and _SPEC.loader is not None
error_tree = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(error_tree)
ROOTS = {**error_tree.ROOTS, "kiosk_ui": "station.errors:StationError"}  # the kiosk raises the station's
PACKAGES = (*ROOTS, "enrollment_station")


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _callee(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _class_code(stmt: ast.stmt) -> ast.expr | None:
    """The value of a class body's ``code = ...`` or ``code: str = ...``."""
    if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "code" for t in stmt.targets):
        return stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == "code":
        return stmt.value
    return None


def _code_literals(path: Path, tree: ast.Module) -> Iterator[tuple[int, ast.expr]]:
    rel = path.relative_to(ROOT).as_posix()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                value = _class_code(stmt)
                if value is not None:
                    yield stmt.lineno, value
        elif isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "code":
                    yield node.lineno, keyword.value
            callee = _callee(node)
            if callee in POSITIONAL_CODE and POSITIONAL_CODE[callee] in (None, rel) and node.args:
                yield node.lineno, node.args[0]


def _problem(value: ast.expr) -> str | None:
    """Why a code expression breaks the convention, or None (also for codes computed at run time)."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return None if CODE.match(value.value) else repr(value.value)
    if isinstance(value, ast.JoinedStr) and value.values:
        head = value.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            text = head.value
            if len(value.values) == 1:
                return None if CODE.match(text) else repr(text)
            return None if PREFIX.match(text) else f"f{text!r}..."
        return "an f-string that starts with a placeholder"
    return None


def test_every_code_literal_is_lowercase_dotted_segments() -> None:
    wrong, seen = [], 0
    for path, tree in _sources():
        for line, value in _code_literals(path, tree):
            seen += 1
            problem = _problem(value)
            if problem:
                wrong.append(f"{path.relative_to(ROOT)}:{line} {problem}")
    assert seen > 300, f"only {seen} code literals found: is the walk still reading the tree?"
    assert not wrong, "codes must be lowercase dotted segments (device.r30x.checksum):\n" + "\n".join(wrong)


def test_the_convention_refuses_what_it_should() -> None:
    def problem(src: str) -> str | None:
        return _problem(ast.parse(src, mode="eval").body)

    assert problem('"device.r30x.checksum"') is None
    assert problem('f"device.reported.{status:#04x}"') is None
    for bad in ('"key-missing"', '"update-refused"', '"Store.error"', '"busy"', '"a..b"', 'f"sync-{x}"'):
        assert problem(bad), bad


_MESSAGE_TESTS = re.compile(
    r"""["'][^"']*["']\s+(not\s+)?in\s+str\((e|exc|err|error)\)"""
    r"""|str\((e|exc|err|error)\)(\.lower\(\))?\s*(==|!=|\.startswith|\.endswith)"""
    r"""|\.message\s*(==|!=|\.startswith)"""
)
# Third-party errors that carry no other signal than their text (kept, each with its reason).
_MESSAGE_TESTS_ALLOWED = {
    # pyserial's SerialException for a port locked by another program has no errno.
    "drivers/transport/serial.py",
}


def test_no_control_flow_on_an_exceptions_message() -> None:
    wrong = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _MESSAGE_TESTS.search(line) and rel not in _MESSAGE_TESTS_ALLOWED:
                    wrong.append(f"{rel}:{n} {line.strip()}")
    assert not wrong, "decide on an error's type or code, never its text:\n" + "\n".join(wrong)


def _root(package: str) -> type[BaseException]:
    module, _, name = ROOTS[package].partition(":")
    root = getattr(importlib.import_module(module), name)
    assert isinstance(root, type) and issubclass(root, BaseException)
    return root


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_every_public_error_derives_from_its_packages_root(package: str) -> None:
    root = _root(package)
    found = error_tree.public_errors(package)
    wrong = [name for name, cls in found.items() if not issubclass(cls, root)]
    assert found, f"no error classes in {package}"
    assert not wrong, f"errors in {package} that do not derive from {ROOTS[package]}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("package", sorted(set(ROOTS) - {"kiosk_ui"}))
def test_each_root_has_a_code_and_a_message(package: str) -> None:
    root = _root(package)
    code = getattr(root, "code", None)
    assert isinstance(code, str) and CODE.match(code)
    error = root("Something happened: do this.")  # type: ignore[call-arg]  # every root takes a message
    assert error.message == "Something happened: do this."  # type: ignore[attr-defined]  # roots define it
    assert str(error) == "Something happened: do this."


def test_the_error_tree_is_documented() -> None:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    for root in ROOTS.values():
        assert f"`{root.replace(':', '.')}`" in text, root
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "error_tree.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr
