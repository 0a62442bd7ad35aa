"""How far the model travels, and how much a short fine-tune brings it back: the annotation loop on the
second domain (labels/domains/taiwan_strait) with its gold as the annotator.

    python -m stancelens.bench.adapt --model models/default --out runs/adapt [--split select|hash] [--n 100]

Steps, each a `stancelens` command as a user would run it: `score` the domain's sentences with the
domain's actor set → `select --n N` the least certain (or, with `--split hash`, N sentences chosen by a
hash of their id, a random-like split) → the gold of those sentences as a Label Studio export (what an
annotator would return) → `train --from MODEL --add export.json` → `evaluate` lexicon, TF-IDF, MODEL and
the adapted model on the sentences nobody annotated, and the adapted model's seed-gold and real-news
figures beside them. Prints one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from stancelens.model.annotation import read_annotations, write_annotations
from stancelens.training.labelstudio import document_task, write_tasks

DOMAIN = Path("labels/domains/taiwan_strait")


def _run(*args: object) -> str:
    exe = str(Path(sys.executable).parent / "stancelens")
    done = subprocess.run([exe, *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"stancelens {args[0]} failed: {done.stderr.strip()[-1500:]}")
    return done.stdout


def _figures(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--tfidf", default="tfidf", help="TF-IDF spec for the baseline row ('tfidf' trains it)")
    parser.add_argument("--out", type=Path, required=True, help="work folder (the adapted model goes in it)")
    parser.add_argument("--split", choices=["select", "hash"], default="select")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--train-args", default="", help="extra `stancelens train` options, space-separated")
    args = parser.parse_args(argv)
    work: Path = args.out
    work.mkdir(parents=True, exist_ok=True)
    gold = {d.doc_id: d for d in read_annotations(DOMAIN / "gold.jsonl")}
    actors = ["--actors", DOMAIN / "actors.yaml", "--actors-mode", "replace"]
    articles = work / "articles.jsonl"
    articles.write_text("".join(json.dumps({"id": k, "text": g.text}) + "\n" for k, g in gold.items()), encoding="utf-8")
    if args.split == "select":
        _run("score", articles, "--out", work / "scored.parquet", "--model", args.model, "--fp32", "--overwrite",
             *actors)
        _run("select", work / "scored.parquet", "--out", work / "tasks.json", "--n", args.n, "--per-pair", args.n,
             "--per-source", args.n)
        chosen = sorted({t["data"]["doc_id"] for t in json.loads((work / "tasks.json").read_text(encoding="utf-8"))})
    else:
        chosen = sorted(gold, key=lambda d: hashlib.sha256(d.encode()).hexdigest())[: args.n]
    write_tasks([document_task(gold[d], as_predictions=False) for d in chosen], work / "export.json")
    write_annotations([g for d, g in gold.items() if d not in chosen], work / "held_out.jsonl")
    adapted = work / "adapted"
    _run("train", "--from", args.model, "--add", work / "export.json", "--actors", DOMAIN / "actors.yaml",
         "--out", adapted, "--quiet", "--add-licence", "simulated annotation: the domain gold", *args.train_args.split())
    figures: dict = {"split": args.split, "annotated": len(chosen), "held_out": len(gold) - len(chosen)}
    for name, spec in (("lexicon", "lexicon"), ("tfidf", args.tfidf), ("model", args.model), ("adapted", adapted)):
        result = _figures(_run("evaluate", "--gold", work / "held_out.jsonl", "--model", spec, "--out",
                               work / f"eval-{name}", "--json", *actors))
        figures[name] = {k: round(result[k], 4) for k in ("stance.macro_f1", "framing.macro_f1")}
    for name, spec in (("model", args.model), ("adapted", adapted)):
        seeds = _figures(_run("evaluate", "--gold", "labels/gold/seeds.jsonl", "--model", spec, "--out",
                              work / f"seeds-{name}", "--json"))
        real = _figures(_run("evaluate", "--real-news", "test", "--model", spec, "--out", work / f"real-{name}",
                             "--json"))
        figures[name].update({"seeds.stance": round(seeds["stance.macro_f1"], 4),
                              "seeds.framing": round(seeds["framing.macro_f1"], 4),
                              "real_news_test.stance": round(real["real_news_test.macro_f1"], 4)})
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
