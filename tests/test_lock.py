"""The dependency locks that `make` installs from are current with pyproject.toml and fully pinned."""

import hashlib
import json
import re
import tomllib

import pytest

from tests.helpers import ROOT


def _deps_hash() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    payload = json.dumps([project["dependencies"], project["optional-dependencies"]], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@pytest.mark.parametrize("lock", ["runtime", "dev"])
def test_lock_is_current_and_pins_every_package_with_hashes(lock):
    text = (ROOT / "requirements" / f"{lock}.lock").read_text(encoding="utf-8")
    first = text.splitlines()[0]
    assert first == f"# pyproject-dependencies-sha256: {_deps_hash()}", (
        "pyproject.toml's dependencies changed since the lock was made; run requirements/lock.sh")
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^ \\]+) \\$", text, flags=re.M)
    assert len(pins) > 40
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text)
    for block in blocks[1:]:
        assert "--hash=sha256:" in block, block.splitlines()[0]
    names = {name.lower().replace("_", "-") for name, _ in pins}
    assert {"fastapi", "transformers", "pydantic-settings"} <= names
    assert ("pytest" in names) == (lock == "dev")  # make serve installs the runtime only
    torch = dict(pins).get("torch")
    assert torch is None or torch.startswith("2.13.0"), torch
    assert "/opt/" not in text and "/tmp/" not in text  # no machine-specific paths
