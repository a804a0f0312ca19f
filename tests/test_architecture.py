"""The import graph of service/ against the layers docs/ARCHITECTURE.md documents: every
import (also those inside functions) goes to a lower layer or stays in its package on
the same layer, only the top layers import grpc or the generated code, the clients never
import the server side, and nothing imports in a cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "service"
ARCHITECTURE = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")

GRPC_LAYER = 7  # api/ and client/: the lowest layers that may speak gRPC
WIRE_PACKAGES = ("grpc", "grpc_health", "grpc_reflection", "hashguard", "google.protobuf")
CLIENTS = ("service.web", "service.client")
SERVER_SIDE = (
    "service.api",
    "service.usecases",
    "service.runtime",
    "service.store",
    "service.replica",
    "service.matcher",
)


def documented_layers() -> dict[str, tuple[int, str]]:
    """module name -> (layer, package), from the table in docs/ARCHITECTURE.md."""
    layers: dict[str, tuple[int, str]] = {}
    for layer, package, modules in re.findall(
        r"^\| (\d+) \| `([\w/]+)/` \| ([\w, /]+) \|", ARCHITECTURE, re.M
    ):
        prefix = "service" if package == "service" else f"service.{package}"
        for module in (m.strip().replace("/", ".") for m in modules.split(",")):
            layers[f"{prefix}.{module}"] = (int(layer), prefix)
            if "." in module:  # a sub-package's __init__ (store/sql/): its package's
                layers[f"{prefix}.{module.rsplit('.', 1)[0]}"] = (int(layer), prefix)
        if package != "service":
            layers[prefix] = (int(layer), prefix)  # the package's __init__
    return layers


def module_files() -> dict[str, Path]:
    """Every module under service/ but the generated code, by dotted name."""
    found = {}
    for path in SERVICE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "_generated" in parts:
            continue
        if parts[-1] in ("__init__", "__main__"):
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules `path` imports: service modules by their name, others by their own."""
    names: set[str] = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {  # imports under `if TYPE_CHECKING:` are for annotations alone
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                )
                base = base.rstrip(".")
            names.add(base)
            for alias in node.names:  # `from service.cli import keys`: a submodule
                if f"{base}.{alias.name}" in modules:
                    names.add(f"{base}.{alias.name}")
    # `from service import metrics` names service.metrics; the empty root package itself
    # is no dependency.
    return {
        n for n in names if n and n != "service" and (n in modules or not n.startswith("service"))
    }


def graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def test_every_module_has_a_documented_layer() -> None:
    layers = documented_layers()
    assert "service.runtime" in layers and "service.cli.serve" in layers  # the table parsed
    missing = sorted(set(module_files()) - set(layers) - {"service"})
    assert not missing, f"add these to the table in docs/ARCHITECTURE.md: {missing}"


def test_imports_follow_the_documented_direction() -> None:
    layers = documented_layers()
    wrong = []
    for module, imported in sorted(graph().items()):
        if module == "service":
            continue
        layer, package = layers[module]
        for name in sorted(imported):
            if name.startswith("service"):
                their_layer, their_package = layers[name]
                if their_layer > layer or (their_layer == layer and their_package != package):
                    wrong.append(f"{module} (layer {layer}) imports {name} (layer {their_layer})")
                if module.startswith(CLIENTS) and name.startswith(SERVER_SIDE):
                    wrong.append(f"{module} is a client but imports the server's {name}")
            elif layer < GRPC_LAYER and name.startswith(WIRE_PACKAGES):
                wrong.append(f"{module} (layer {layer}) imports {name}: only layers >= 7 may")
    assert not wrong, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_there_are_no_import_cycles() -> None:
    edges = {m: {n for n in imported if n.startswith("service")} for m, imported in graph().items()}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(
                "import cycle: " + " -> ".join([*path[path.index(module) :], module])
            )
        if module in done:
            return
        for name in sorted(edges.get(module, ())):
            if name != module and not module.startswith(name + "."):  # a package's own __init__
                visit(name, [*path, module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
