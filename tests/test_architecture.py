"""The layering of the packages, checked on the source and on what each installable part pulls in.

Layers (an arrow is "may import"):

    enrollment_station (composition root) -> everything
    kiosk_ui -> station, drivers, packetformat
    sync     -> station, drivers, packetformat
    station  -> drivers, packetformat
    drivers, packetformat -> nothing of ours

Imports are read from the syntax tree of every module, function-level imports included, and so are
the lazy ``"module:attribute"`` strings of the command tables and any ``importlib.import_module``
argument: a lazy reference is an import that happens later. Imports under ``if TYPE_CHECKING:``
count for the layers but not for cycles (they never run). A package's ``__main__`` is an entry
point like the console scripts and may import the composition root. PySide6 lives only in
``kiosk_ui``; no module imports itself back through others.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
OURS = ("enrollment_station", "kiosk_ui", "sync", "station", "drivers", "packetformat")
ALLOWED: dict[str, set[str]] = {
    "enrollment_station": set(OURS),
    "kiosk_ui": {"kiosk_ui", "station", "drivers", "packetformat"},
    "sync": {"sync", "station", "drivers", "packetformat"},
    "station": {"station", "drivers", "packetformat"},
    "drivers": {"drivers"},
    "packetformat": {"packetformat"},
}
QT_MODULES = ("PySide6", "shiboken6")
_LAZY = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*):[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    how: str  # "import" or "lazy"
    typing_only: bool = False  # under ``if TYPE_CHECKING:``: never runs


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in OURS:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    if path.name != "__init__.py":
        parts = parts[:-1]
    parts = parts[: len(parts) - node.level + 1]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _typing_only_nodes(tree: ast.Module) -> set[int]:
    """The ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                found.update(id(n) for n in ast.walk(child))
    return found


def _edges(module: str, path: Path) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only = _typing_only_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Edge(module, alias.name, node.lineno, "import", id(node) in typing_only)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in MODULES else base
                yield Edge(module, target, node.lineno, "import", id(node) in typing_only)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = _LAZY.match(node.value)
            if match and match.group(1).split(".")[0] in OURS:
                yield Edge(module, match.group(1), node.lineno, "lazy")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Edge(module, node.args[0].value, node.lineno, "lazy")


EDGES = [edge for module, path in sorted(MODULES.items()) for edge in _edges(module, path)]


def _owner(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def test_every_package_imports_only_the_layers_below_it() -> None:
    wrong = []
    for edge in EDGES:
        src_pkg, dst_pkg = edge.source.split(".")[0], edge.target.split(".")[0]
        if dst_pkg not in OURS:
            continue
        if edge.source.endswith("__main__") and dst_pkg == "enrollment_station":
            continue
        if dst_pkg not in ALLOWED[src_pkg]:
            wrong.append(f"{MODULES[edge.source].relative_to(ROOT)}:{edge.line} {edge.how}s {edge.target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_lazy_references_name_real_modules() -> None:
    missing = [
        f"{MODULES[e.source].relative_to(ROOT)}:{e.line} -> {e.target}"
        for e in EDGES
        if e.how == "lazy" and e.target not in MODULES
    ]
    assert not missing, "lazy references to modules that do not exist:\n" + "\n".join(missing)


def test_qt_only_in_the_kiosk() -> None:
    wrong = [
        f"{MODULES[e.source].relative_to(ROOT)}:{e.line} imports {e.target}"
        for e in EDGES
        if e.target.split(".")[0] in QT_MODULES and not e.source.startswith("kiosk_ui")
    ]
    assert not wrong, "Qt outside kiosk_ui:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for edge in EDGES:
        owner = _owner(edge.target)
        if owner is not None and owner != edge.source and not edge.typing_only:
            graph[edge.source].add(owner)
    assert _cycles(graph) == []


# -- what each installable part pulls in ---------------------------------------------------------

HEAVY_FOR_CENTRAL = {
    "pyside6-essentials",
    "pyside6",
    "shiboken6",
    "opencv-python-headless",
    "pyusb",
    "sqlcipher3",
}


def _closure(extra: str) -> set[str]:
    """Distribution names that ``pip install .[extra]`` brings, read from installed metadata."""
    seen: set[str] = set()
    todo: list[tuple[str, set[str]]] = [("enrollment-station", {extra})]
    while todo:
        name, extras = todo.pop()
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
                continue
            key = req.name.lower().replace("_", "-")
            if key == "enrollment-station":
                todo.append((key, set(req.extras)))
                continue
            if key not in seen:
                seen.add(key)
                todo.append((key, set(req.extras)))
    return seen


def test_central_part_brings_no_qt_opencv_usb_or_sqlcipher() -> None:
    central = _closure("central")
    assert "aiohttp" in central
    assert not central & HEAVY_FOR_CENTRAL, sorted(central & HEAVY_FOR_CENTRAL)


def test_station_part_brings_no_aiohttp_server_and_no_qt() -> None:
    station = _closure("station")
    assert "sqlcipher3" in station
    assert "aiohttp" not in station and "pyside6-essentials" not in station


_BLOCKER = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not part of this install")
        return None
sys.meta_path.insert(0, Block())
import importlib
for module in sys.argv[2].split(","):
    importlib.import_module(module)
print("ok", len(sys.argv[2].split(",")))
"""


def _import_without(blocked: set[str], modules: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER, ",".join(sorted(blocked)), ",".join(modules)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def _under(*prefixes: str) -> list[str]:
    return sorted(
        m
        for m in MODULES
        if any(m == p or m.startswith(p + ".") for p in prefixes) and not m.endswith("__main__")
    )


def test_central_modules_import_without_the_station_libraries() -> None:
    modules = _under("sync.central", "sync.pki", "sync.common")
    result = _import_without(
        {"PySide6", "shiboken6", "cv2", "usb", "sqlcipher3", "serial", "pyudev"}, modules
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_station_modules_import_without_aiohttp() -> None:
    modules = _under("station", "drivers", "sync.agent")
    result = _import_without({"aiohttp", "PySide6", "shiboken6"}, modules)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("command", ["station", "central"])
def test_console_commands_come_from_the_composition_root(command: str) -> None:
    scripts = {ep.name: ep.value for ep in metadata.distribution("enrollment-station").entry_points}
    assert scripts[command].startswith("enrollment_station.")


PKI_FILE_NAMES = {
    "station.crt",
    "ca.crt",
    "central-hpke.pub",
    "central-hpke.suite",
    "receipt.pub",
    "policy.pub",
}


def test_station_pki_file_names_have_one_owner() -> None:
    """Only ``station.home.PkiLayout`` names the station's PKI files; everything else asks it."""
    wrong = []
    for module, path in MODULES.items():
        if module == "station.home" or not module.startswith(("station", "sync.agent", "kiosk_ui")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in PKI_FILE_NAMES:
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} names {node.value!r}")
    assert not wrong, "\n".join(wrong)
