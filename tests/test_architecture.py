"""The layer contract of pyproject.toml holds, and the check can fail."""

import shutil
from pathlib import Path

from tests.architecture import Contract, check, module_files
from tests.helpers import ROOT


def test_the_project_keeps_its_layer_contract():
    violations = check(ROOT)
    assert not violations, "\n".join(map(str, violations))


def test_the_check_sees_every_room():
    modules = module_files(Contract.from_pyproject(ROOT))
    for name in ("stancelens.cli", "stancelens.serve.app", "stancelens.serve.routes.analyze", "stancelens.batch.scoring",
                 "stancelens.bench.speed", "stancelens.training.trainer", "stancelens.model.predictor"):
        assert name in modules


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    shutil.copy(ROOT / "pyproject.toml", root)
    for folder in ("stancelens", "model", "training", "serve", "batch", "bench", "labels"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.jsonl"))
    return root


def test_an_upward_import_fails_the_check(tmp_path):
    root = _copy_tree(tmp_path)
    assert check(root) == []
    (root / "model" / "shortcut.py").write_text("def f():\n    from stancelens.serve.app import create_app\n")
    (root / "training" / "relative.py").write_text("from ..batch import scoring\n")
    found = check(root)
    assert {(v.module, v.imported.rsplit(".", 1)[0] if v.imported.endswith("scoring") else v.imported) for v in found} >= {
        ("stancelens.model.shortcut", "stancelens.serve.app"),
        ("stancelens.training.relative", "stancelens.batch"),
    }
    assert any("a layer above it" in str(v) for v in found)


def test_sibling_rooms_must_stay_independent(tmp_path):
    root = _copy_tree(tmp_path)
    (root / "batch" / "peek.py").write_text("import stancelens.serve.settings\n")
    assert any("share a layer" in str(v) for v in check(root))


def test_production_code_may_not_read_the_tests_tree(tmp_path):
    root = _copy_tree(tmp_path)
    (root / "bench" / "peek.py").write_text("from pathlib import Path\nDOCS = Path('tests/fixtures/bench')\n")
    assert any("tests tree" in str(v) for v in check(root))
