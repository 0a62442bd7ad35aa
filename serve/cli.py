"""The `stancelens` command line: one entry point for analysis, training, evaluation, serving and scoring."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="stancelens: directed stance between actors and framing of actor mentions in news text.",
)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _read_inputs(files: list[str]) -> list[tuple[str, str]]:
    """(doc_id, text) for each file, '-' meaning standard input; directories give their .txt files."""
    from stancelens.model.files import read_text_document

    docs: list[tuple[str, str]] = []
    for name in files:
        if name == "-":
            data = sys.stdin.buffer.read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                _fail(f"<stdin>: expected UTF-8 text, found an undecodable byte at {exc.start}; convert it to UTF-8")
            if not text.strip():
                _fail("<stdin>: expected a document with text, found nothing; pipe a document in")
            docs.append(("stdin", text))
            continue
        path = Path(name)
        if path.is_dir():
            paths = sorted(path.glob("*.txt"))
            if not paths:
                _fail(f"{path}: expected a folder with .txt documents, found none")
        elif path.exists():
            paths = [path]
        else:
            _fail(f"{path}: no such file; give a .txt document, a folder of them, or - for stdin")
        for p in paths:
            try:
                docs.append((p.stem, read_text_document(p)))
            except ValueError as exc:
                _fail(str(exc))
    return docs


@app.command()
def analyze(
    files: Annotated[list[str], typer.Argument(help="UTF-8 text documents, folders of .txt files, or - for stdin.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSONL in the annotation format.")],
    model: Annotated[
        str, typer.Option(help="'lexicon', 'tfidf:DIR', or a trained model directory (default: models/default).")
    ] = "lexicon",
    batch_size: Annotated[int, typer.Option(min=1, help="Documents per prediction batch.")] = 16,
) -> None:
    """Annotate documents: sentences, actor mentions, framing and ordered pairs with stance."""
    from tqdm import tqdm

    from stancelens.model.annotation import write_annotations
    from stancelens.model.loading import load_predictor
    from stancelens.model.predictor import DocumentInput

    docs = _read_inputs(files)
    try:
        predictor = load_predictor(model)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    results = []
    with tqdm(total=len(docs), desc="documents", unit="doc", disable=None) as bar:
        for i in range(0, len(docs), batch_size):
            chunk = [DocumentInput(d, t) for d, t in docs[i : i + batch_size]]
            results.extend(predictor.annotate(chunk))
            bar.update(len(chunk))
    n = write_annotations(results, out)
    pairs = sum(len(s.pairs) for d in results for s in d.sentences)
    mentions = sum(len(s.mentions) for d in results for s in d.sentences)
    typer.echo(f"wrote {n} documents, {mentions} mentions, {pairs} ordered pairs to {out}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Annotation JSONL files to check against the schema.")],
) -> None:
    """Check annotation files: schema, offsets, labels and actor ids, with file/line/field on error."""
    from stancelens.model.annotation import AnnotationFileError, read_annotations
    from stancelens.model.validation import check_labels

    for path in files:
        try:
            docs = list(read_annotations(path))
            check_labels(docs, str(path))
        except AnnotationFileError as exc:
            _fail(str(exc))
        typer.echo(f"{path}: ok ({len(docs)} documents)")


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="Write the JSON Schema here instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of the annotation format."""
    from stancelens.model.annotation import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
