"""A real uvicorn server on the lexicon predictor, for the browser test and the load test.

    .venv/bin/python -m tests.browser_server --port 8765 [--no-micro-batching]

The lexicon rules need no trained model, so the server is ready in about a second; everything else
(the app, the micro-batcher, limits, logging) is the production code path of `stancelens serve`.
"""

from __future__ import annotations

import argparse

import uvicorn

from stancelens.model.lexicon import LexiconEngine
from stancelens.model.predictor import Predictor
from stancelens.serve.app import create_app
from stancelens.serve.observability import configure_logging
from stancelens.serve.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-micro-batching", action="store_true", help="serve requests one by one")
    parser.add_argument("--log-level", default="INFO", help="level of the JSON request logs "
                        "(WARNING silences them)")
    args = parser.parse_args(argv)
    settings = Settings(model="lexicon", micro_batching=not args.no_micro_batching)
    configure_logging(args.log_level)
    app = create_app(settings, predictor=Predictor(LexiconEngine()))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=30)


if __name__ == "__main__":
    main()
