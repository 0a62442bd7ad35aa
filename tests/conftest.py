"""Fixtures shared by the whole suite; plain helpers are in tests/helpers.py."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import GOLD, MINI_CORPUS, ROOT, free_port, wait_ready


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT

@pytest.fixture(scope="session")
def registry():
    from stancelens.model.registry import default_registry

    return default_registry()


@pytest.fixture(scope="session")
def gold_docs():
    from stancelens.model.annotation import read_annotations

    return list(read_annotations(GOLD))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A real fine-tune of a few steps on the small fixture corpus (no public datasets): the model the
    service and prediction tests run against."""
    from stancelens.training.config import TrainingConfig
    from stancelens.training.trainer import train

    out = tmp_path_factory.mktemp("models") / "tiny"
    config = TrainingConfig(authored_path=str(MINI_CORPUS), dse_path=None, seesaw_path=None, epochs=2,
                            batch_size=16, steps_limit=12, max_length=64, authored_valid_fraction=0.2,
                            learning_rate=1e-4, patience=5)
    train(config, out, progress=False, say=lambda m: None)
    return out


@pytest.fixture(scope="session")
def tiny_predictor(tiny_model):
    from stancelens.model.loading import load_predictor

    return load_predictor(tiny_model)


@pytest.fixture(scope="session")
def lexicon_server_url():
    """A real uvicorn server (tests/serve/browser_server.py) on the lexicon rules, on a free loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tests.serve.browser_server", "--port", str(port)], cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(proc, url, log)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
