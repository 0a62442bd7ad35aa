"""The layer contract of pyproject.toml ([tool.stancelens.architecture]) checked on source files.

import-linter cannot see the project's packages: they live in the design's top-level folders (model/,
serve/, …) mapped to `stancelens.*` by setuptools' package-dir, which grimp does not follow. So this
reads the mapping itself, parses every module's imports with `ast` (function-level imports included,
relative imports resolved) and checks each against the layers.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


@dataclass(frozen=True)
class Contract:
    layers: list[list[str]]  # top to bottom; each a list of independent packages
    package_dirs: dict[str, Path]  # package name -> folder

    @classmethod
    def from_pyproject(cls, root: Path) -> Contract:
        config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        layers = [[p.strip() for p in layer.split("|")] for layer in config["tool"]["stancelens"]["architecture"]["layers"]]
        mapping = config["tool"]["setuptools"]["package-dir"]
        return cls(layers, {name: root / folder for name, folder in mapping.items()})

    def layer_of(self, module: str) -> tuple[int, str] | None:
        """(layer index, the package of the contract that holds `module`), the longest match."""
        best: tuple[int, str] | None = None
        for index, layer in enumerate(self.layers):
            for package in layer:
                if (module == package or module.startswith(package + ".")) and (
                    best is None or len(package) > len(best[1])
                ):
                    best = (index, package)
        return best


def module_files(contract: Contract) -> dict[str, Path]:
    """Every module of the mapped packages, by its dotted name (sub-packages found once, by their own
    mapping when they have one)."""
    found: dict[str, Path] = {}
    for package, folder in sorted(contract.package_dirs.items(), key=lambda kv: -len(kv[0])):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            found.setdefault(name, path)
    return found


def imports_of(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            # `from stancelens import serve` imports a sub-package by name
            out.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return out


def reads_tests(path: Path) -> list[int]:
    """Lines of string constants that point into the tests tree."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and (node.value == "tests" or node.value.startswith("tests/") or "/tests/" in node.value)]


def check(root: Path) -> list[Violation]:
    """Every import that breaks the contract of `root`'s pyproject.toml."""
    contract = Contract.from_pyproject(root)
    violations: list[Violation] = []
    for module, path in module_files(contract).items():
        home = contract.layer_of(module)
        for line in reads_tests(path):
            violations.append(Violation(module, line, "tests/", "production code must not read the tests tree"))
        for line, imported in imports_of(module, path):
            if imported == "tests" or imported.startswith("tests."):
                violations.append(Violation(module, line, imported, "production code must not import tests"))
                continue
            if home is None or not imported.startswith("stancelens"):
                continue
            there = contract.layer_of(imported)
            if there is None or there[1] == home[1]:
                continue
            if there[0] < home[0]:
                violations.append(Violation(module, line, imported,
                                            f"{home[1]} (layer {home[0] + 1}) may not import from {there[1]}, "
                                            f"a layer above it (layer {there[0] + 1})"))
            elif there[0] == home[0]:
                violations.append(Violation(module, line, imported,
                                            f"{home[1]} and {there[1]} share a layer and must stay independent"))
    return violations
