"""The `stancelens` command line: one entry point for analysis, training, evaluation, serving and scoring."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from stancelens.model.loading import DEFAULT_MODEL_DIR

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="stancelens: directed stance between actors and framing of actor mentions in news text.",
)


# -- shared option definitions: one each, with per-command defaults where commands differ on purpose --

MODEL_HELP = ("'lexicon' (rules), 'tfidf' (the baseline, trained first when missing), 'tfidf:DIR', or a trained "
              "model directory")


def model_option(default_text: str) -> Any:
    """`--model`: one spec, read by `resolve_predictor` in every command."""
    return typer.Option("--model", help=f"{MODEL_HELP} (default: {default_text}).")


def fast_option(default_text: str) -> Any:
    """`--fast/--fp32`: the transformer's fast path (bf16 or int8, see `stancelens bench`) or the fp32 reference."""
    return typer.Option("--fast/--fp32", help=f"fast path (bf16 or int8) of a transformer model, or the fp32 "
                                              f"reference (default: {default_text}; see `stancelens bench`).")


def fast_backend_option() -> Any:
    """`--fast-backend`: which reduced-precision encoder the fast path uses."""
    return typer.Option("--fast-backend", help="backend of the fast path: bf16, onnx or torch (default: "
                                               "STANCELENS_FAST_BACKEND, else bf16 where the CPU has bf16 units, "
                                               "else onnx).")


def actors_option() -> Any:
    """`--actors FILE`: an actor set in the registry's format, used at run time without retraining."""
    return typer.Option("--actors", help="Actor set YAML (the format of labels/actors.yaml: id, kind, aliases, "
                                         "exclusions; descriptors, framing_terms and resolution optional), added to the model's "
                                         "registry or replacing it (--actors-mode).")


def actors_mode_option() -> Any:
    """`--actors-mode`: add the set to the model's registry (default) or replace it."""
    return typer.Option("--actors-mode", help="add (the model's actors plus the set's; a set id redefines the "
                                              "model's) or replace (the set's actors only).")


def with_actor_set(predictor, actors: Path | None, mode: str = "add"):
    """The predictor with `--actors` applied (unchanged without one); errors exit naming file, line and field."""
    registry = actor_registry(predictor.registry, actors, mode)
    return predictor if registry is None else predictor.with_registry(registry)


def actor_registry(base, actors: Path | None, mode: str = "add"):
    """The registry that `--actors FILE` gives over `base` (None without --actors)."""
    if actors is None:
        if mode != "add":
            _fail(f"--actors-mode {mode}: expected --actors FILE with it, found none; give the actor set")
        return None
    from stancelens.model.actor_set import ActorSetError, apply_actor_set, read_actor_set

    try:
        return apply_actor_set(base, read_actor_set(actors, base), mode)
    except ActorSetError as exc:
        _fail(str(exc))


def read_actor_set_early(actors: Path | None, mode: str = "add"):
    """Read and check `--actors` against the default registry before a model is loaded or trained (a broken
    file fails at once); the set is applied to the model's own registry later."""
    if actors is None:
        return None
    from stancelens.model.actor_set import ActorSetError, apply_actor_set, read_actor_set
    from stancelens.model.registry import default_registry

    try:
        actor_set = read_actor_set(actors, default_registry())
        apply_actor_set(default_registry(), actor_set, mode)
    except ActorSetError as exc:
        _fail(str(exc))
    return actor_set


def _fail(message: str, code: int = 2) -> NoReturn:
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
    model: Annotated[str, model_option("lexicon")] = "lexicon",
    batch_size: Annotated[int, typer.Option(min=1, help="Documents per prediction batch.")] = 16,
    fast: Annotated[bool, fast_option("fp32")] = False,
    actors: Annotated[Path | None, actors_option()] = None,
    actors_mode: Annotated[str, actors_mode_option()] = "add",
) -> None:
    """Annotate documents: sentences, actor mentions, framing and ordered pairs with stance."""
    from tqdm import tqdm

    from stancelens.model.annotation import write_annotations
    from stancelens.model.predictor import DocumentInput

    docs = _read_inputs(files)
    predictor = with_actor_set(resolve_predictor(model, fast), actors, actors_mode)
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


DEFAULT_CONFIG = Path("training/configs/default.yaml")


def _packaged_config(name: str = "default.yaml") -> Path:
    from importlib import resources

    return Path(str(resources.files("stancelens.training") / "configs" / name))


def _config(config: Path | None, recipe: str = "default.yaml", **overrides):
    from stancelens.training.config import TrainingConfig

    try:
        if config is None:
            local = DEFAULT_CONFIG.parent / recipe
            config = local if local.exists() else _packaged_config(recipe)
        return TrainingConfig.from_yaml(config, **overrides)
    except ValueError as exc:
        _fail(str(exc))


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write (atomically).")] = DEFAULT_MODEL_DIR,
    config: Annotated[Path | None, typer.Option(help="Training config YAML (default: training/configs/default.yaml).")] = None,
    base_model: Annotated[str | None, typer.Option(help="Local Hugging Face encoder directory (default: all-MiniLM-L6-v2).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the config's epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Progress as one line every 50 steps instead of bars "
                                        "(for logs).")] = False,
    add: Annotated[list[Path] | None, typer.Option("--add", help="Your annotations (project JSONL, Label Studio "
                                                   "export or CSV; repeatable) added to the recipe.")] = None,
    add_weight: Annotated[int | None, typer.Option("--add-weight", min=1, help="Times each epoch sees an added "
                                                   "sentence (default: the config's added_repeat).")] = None,
    init_from: Annotated[Path | None, typer.Option("--from", help="Continue from this model for a short fine-tune "
                                                   "(default config then: training/configs/finetune.yaml).")] = None,
    actors: Annotated[Path | None, typer.Option("--actors", help="Actor set YAML whose ids the --add files use.")] = None,
    licence: Annotated[str | None, typer.Option("--add-licence", help="Licence note of the added annotations "
                                                "(metrics.json and the model's DATA.md).")] = None,
) -> None:
    """Fine-tune the stance and framing transformer and write an HF-format model directory."""
    from stancelens.training.added import AddedDataError
    from stancelens.training.trainer import TrainingError
    from stancelens.training.trainer import train as run_training

    if init_from is not None and Path(init_from).resolve() == Path(out).resolve():
        _fail(f"--from {init_from} and --out {out}: expected another --out than the model continued from, found the "
              "same folder; write the adapted model beside it (e.g. --out models/adapted)")
    cfg = _config(config, "finetune.yaml" if init_from is not None else "default.yaml", base_model=base_model,
                  epochs=epochs, seed=seed, added_paths=[str(p) for p in add] if add else None,
                  added_repeat=add_weight, init_from=str(init_from) if init_from is not None else None,
                  added_actors=str(actors) if actors is not None else None, added_licence=licence)
    try:
        metrics = run_training(cfg, out, progress=not quiet)
    except (TrainingError, AddedDataError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps({"out": str(out), "best_epoch": metrics["best_epoch"],
                           "training_minutes": metrics["training_minutes"]}))


@app.command("train-baseline")
def train_baseline(
    out: Annotated[Path, typer.Option("--out", "-o")] = Path("models/tfidf"),
    config: Annotated[Path | None, typer.Option(help="Training config YAML: the same data as the transformer.")] = None,
) -> None:
    """Train the TF-IDF + logistic-regression baseline on the transformer's training data."""
    from stancelens.training.baselines import train_tfidf

    try:
        train_tfidf(_config(config), out)
    except ValueError as exc:
        _fail(str(exc))


TFIDF_DIR = Path("models/tfidf")


def resolve_predictor(model: str | None, fast: bool = False, backend: str | None = None):
    """The one model-spec parser of every command: None is the default model (trained first when missing,
    unless STANCELENS_NO_AUTO_TRAIN is set), 'tfidf' the baseline (trained first when missing), else what
    `load_predictor` reads ('lexicon', 'tfidf:DIR', a model directory)."""
    from stancelens.model.loading import load_predictor

    spec = resolve_model_spec(model)
    try:
        return load_predictor(spec, fast=fast, backend=backend if fast else None)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


def resolve_model_spec(model: str | None) -> str:
    """The spec that `load_predictor` reads, training the default model or the TF-IDF baseline first where
    they are asked for and missing."""
    if model is None or Path(model) == DEFAULT_MODEL_DIR:
        _ensure_default_model()
        return str(DEFAULT_MODEL_DIR)
    if model == "tfidf":
        if not (TFIDF_DIR / "tfidf.joblib").exists():
            typer.echo(f"{TFIDF_DIR} is missing: training the TF-IDF baseline first", err=True)
            from stancelens.training.baselines import train_tfidf

            train_tfidf(_config(None), TFIDF_DIR, say=lambda m: typer.echo(m, err=True))
        return str(TFIDF_DIR)
    return model


@app.command()
def evaluate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Report directory: report.json, report.md, PNGs.")],
    gold: Annotated[list[Path] | None, typer.Option("--gold", help="Gold annotations (JSONL, Label Studio JSON or CSV); repeat for agreement.")] = None,
    pred: Annotated[Path | None, typer.Option("--pred", help="Predictions to score against one --gold.")] = None,
    model: Annotated[str | None, typer.Option("--model", help=f"Score a model: {MODEL_HELP}.")] = None,
    dse: Annotated[Path | None, typer.Option(help="DSE folder or valid.txt: also report DSE's 5-class F1.")] = None,
    seesaw: Annotated[Path | None, typer.Option(help="SEESAW folder: also report stance F1 on its validation split.")] = None,
    real_news: Annotated[list[str] | None, typer.Option("--real-news", help="dev or test (repeatable): stance on that "
                                                        "half of the DSE valid lines relabelled under our codebook "
                                                        "(read from $STANCELENS_DATA/dse; test is for reporting, "
                                                        "never for choices).")] = None,
    resolution: Annotated[list[Path] | None, typer.Option("--resolution", help="Resolution test set (repeatable; "
                                                          "labels/resolution/*.jsonl): descriptor and pronoun "
                                                          "resolution, voice and speaker accuracy beside the "
                                                          "nearest-antecedent baseline.")] = None,
    second_pass: Annotated[list[Path] | None, typer.Option("--second-pass", help="A second annotation of the "
                                                           "--resolution sets' items (repeatable; "
                                                           "labels/resolution/second_pass.jsonl): agreement of "
                                                           "the two, and the model on the items both agree on.")] = None,
    adjudication: Annotated[list[Path] | None, typer.Option("--adjudication", help="Final labels of the items two "
                                                            "passes disputed (labels/resolution/adjudication.jsonl): "
                                                            "the model against the --resolution sets' labels with "
                                                            "those items settled.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    documents: Annotated[Path | None, typer.Option(help="Folder of <doc_id>.txt: the texts of CSV annotations.")] = None,
    fast: Annotated[bool, fast_option("fp32")] = False,
    actors: Annotated[Path | None, actors_option()] = None,
    actors_mode: Annotated[str, actors_mode_option()] = "add",
) -> None:
    """Model against gold, predictions against gold, or annotators against each other."""
    from stancelens.model.registry import default_registry
    from stancelens.training.annotation_io import load_any, load_sets
    from stancelens.training.evaluate import evaluation_report, write_report

    gold = gold or []
    # Gold of another domain names the actor set's ids: it is read with the registry the model will use.
    registry = actor_registry(default_registry(), actors, actors_mode)
    try:
        # A Label Studio export may hold several annotators: each is a set of its own for agreement.
        gold_sets = [s for g in gold for s in (load_sets(g, documents, registry) if pred is None and model is None
                                                 else [load_any(g, documents, registry)])]
        predicted = load_any(pred, documents, registry) if pred is not None else None
    except ValueError as exc:
        _fail(str(exc))
    if predicted is None and model is None and len(gold_sets) < 2 and not real_news and not resolution:
        _fail("expected --model (with --gold/--dse/--seesaw/--resolution), --gold with --pred, or two or more --gold "
              "files")
    if resolution and model is None:
        _fail("--resolution scores a model: give --model too")
    if second_pass and not resolution:
        _fail("--second-pass annotates the items of a resolution set: give the --resolution files it was made for")
    if adjudication and not resolution:
        _fail("--adjudication settles items of a resolution set: give the --resolution files it was made for")
    if predicted is not None and len(gold_sets) != 1:
        _fail(f"--pred needs exactly one --gold to compare with, found {len(gold_sets)}")
    predictor = resolve_predictor(model, fast) if model is not None and predicted is None else None
    if predictor is not None:
        predictor = with_actor_set(predictor, actors, actors_mode)
    names = [s.name for s in gold_sets]
    if len(set(names)) < len(names):
        names = [f"{k + 1}:{n}" for k, n in enumerate(names)]
    splits = list(real_news or [])
    for split in splits:
        if split not in ("dev", "test"):
            _fail(f"--real-news: expected dev or test, found {split!r}")
    if splits and predictor is None:
        _fail("--real-news scores a model: give --model too")
    from stancelens.training.config import TrainingConfig

    dse_dir = TrainingConfig.resolve_path("${STANCELENS_DATA}/dse") if splits else None
    try:
        report, kind = evaluation_report(gold_sets, names, predicted, predictor, dse, seesaw, splits, dse_dir,
                                         list(resolution or []), list(second_pass or []), list(adjudication or []))
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    write_report(report, out, kind)
    if kind == "model":
        result = report["summary"]
    else:
        result = {f"{task}.alpha": t["krippendorff_alpha"] for task, t in report["tasks"].items()}
    if report["skipped_items"]:
        typer.echo(f"{len(report['skipped_items'])} items could not be used; report.json lists them (skipped_items)",
                   err=True)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for key, value in result.items():
            typer.echo(f"{key}: {value if value is None else round(value, 4)}")
        typer.echo(f"report: {out / 'report.md'}")


@app.command("export-labelstudio")
def export_labelstudio(
    pred: Annotated[Path, typer.Argument(help="Annotations (usually predictions) in the JSONL annotation format.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Label Studio tasks JSON with pre-annotations.")],
    config: Annotated[Path | None, typer.Option(help="Also write the labelling configuration XML here.")] = None,
    actors: Annotated[Path | None, actors_option()] = None,
    actors_mode: Annotated[str, actors_mode_option()] = "add",
) -> None:
    """Label Studio tasks with the model's predictions as pre-annotations (labels/label-studio/config.xml)."""
    from stancelens.model.registry import default_registry
    from stancelens.training.annotation_io import load_any
    from stancelens.training.labelstudio import labeling_config, to_tasks, write_tasks

    registry = actor_registry(default_registry(), actors, actors_mode)
    try:
        tasks = to_tasks(load_any(pred, registry=registry))
    except ValueError as exc:
        _fail(str(exc))
    write_tasks(tasks, out)
    if config is not None:
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(labeling_config(registry), encoding="utf-8")
    typer.echo(f"wrote {len(tasks)} tasks to {out}; import them into a project set up with "
               f"{config or 'labels/label-studio/config.xml'}")


@app.command()
def select(
    results: Annotated[Path, typer.Argument(help="Predictions: annotation JSONL, or the parquet of `stancelens score`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Label Studio tasks JSON, one sentence per task.")],
    n: Annotated[int, typer.Option(min=1, help="How many sentences to pick.")] = 200,
    per_pair: Annotated[int, typer.Option(min=1, help="At most this many per ordered actor pair.")] = 5,
    per_source: Annotated[int, typer.Option(min=1, help="At most this many per outlet (else per document).")] = 3,
    actors: Annotated[Path | None, actors_option()] = None,
    actors_mode: Annotated[str, actors_mode_option()] = "add",
) -> None:
    """Pick the sentences the model is least certain about, spread over actor pairs and sources."""
    from stancelens.batch.tables import mentions_path
    from stancelens.model.registry import default_registry
    from stancelens.training.annotation_io import load_any
    from stancelens.training.labelstudio import write_tasks
    from stancelens.training.selection import candidates_from_annotations, candidates_from_parquet, select, tasks_for

    try:
        if results.suffix.lower() == ".parquet":
            candidates = candidates_from_parquet(results, mentions_path(results))
        else:
            candidates = candidates_from_annotations(
                load_any(results, registry=actor_registry(default_registry(), actors, actors_mode)))
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    chosen, stats = select(candidates, n, per_pair, per_source)
    write_tasks(tasks_for(chosen), out)
    typer.echo(json.dumps({"out": str(out), **stats}))


def _ensure_default_model() -> None:
    """Train the default model when it is missing, so that the main job works from a fresh clone;
    STANCELENS_NO_AUTO_TRAIN=1 refuses instead."""
    if (DEFAULT_MODEL_DIR / "stancelens.json").exists():
        return
    if os.environ.get("STANCELENS_NO_AUTO_TRAIN"):
        _fail(f"no --model given and {DEFAULT_MODEL_DIR} does not exist; train it with "
              f"`stancelens train --out {DEFAULT_MODEL_DIR}`, or pass --model lexicon (rules) or a model directory")
    typer.echo(f"{DEFAULT_MODEL_DIR} is missing: training the default model first (set "
               "STANCELENS_NO_AUTO_TRAIN=1 to refuse instead)", err=True)
    from stancelens.training.trainer import TrainingError
    from stancelens.training.trainer import train as run_training

    try:
        run_training(_config(None), DEFAULT_MODEL_DIR)
    except (TrainingError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


@app.command()
def serve(
    model: Annotated[str | None, model_option(f"{DEFAULT_MODEL_DIR}; when missing, the service starts at once on "
                                              "the rules and switches to the model once it is trained beside it")
                     ] = None,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers_threads: Annotated[int | None, typer.Option("--threads", help="torch CPU threads.")] = None,
    no_micro_batching: Annotated[bool, typer.Option("--no-micro-batching", help="Serve requests one by one.")] = False,
    fast: Annotated[bool | None, fast_option("STANCELENS_FAST, else fp32")] = None,
    fast_backend: Annotated[str | None, fast_backend_option()] = None,
    actors: Annotated[list[Path] | None, typer.Option("--actors", help="Actor set YAML offered to requests as "
                                                      "`actor_set` (repeatable; the first is the default for "
                                                      "requests that name none; 'model' is the model's own).")] = None,
    actors_mode: Annotated[str | None, actors_mode_option()] = None,
) -> None:
    """Serve the HTTP API and the web page (limits: STANCELENS_* variables, see the README)."""
    import uvicorn

    from stancelens.serve.app import create_app
    from stancelens.serve.observability import configure_logging
    from stancelens.serve.settings import Settings

    chosen = model if model is not None else os.environ.get("STANCELENS_MODEL") or None
    beside = ((chosen is None or Path(chosen) == DEFAULT_MODEL_DIR) and not (DEFAULT_MODEL_DIR / "stancelens.json").exists()
              and not os.environ.get("STANCELENS_NO_AUTO_TRAIN"))
    log_path = DEFAULT_MODEL_DIR.parent / f".{DEFAULT_MODEL_DIR.name}.training.log"
    # A new user does not wait for training: the rules answer now, the model takes over when saved.
    overrides = ({"model": "lexicon", "pending_model": str(DEFAULT_MODEL_DIR), "training_log": str(log_path)}
                 if beside else {"model": resolve_model_spec(chosen)})
    try:  # every setting is checked before anything is started
        settings = Settings.from_env(**overrides, threads=workers_threads,
                                     micro_batching=False if no_micro_batching else None, fast=fast,
                                     fast_backend=fast_backend, actor_sets=[str(p) for p in actors] if actors else None,
                                     actors_mode=actors_mode)
    except ValueError as exc:
        _fail(f"{exc} (a command-line option sets the same setting)")
    from stancelens.model.actor_set import ActorSetError
    from stancelens.serve.actor_sets import ActorSets

    try:  # a broken actor set stops the service before it starts (and before any training)
        ActorSets(settings.actor_sets, settings.actors_mode)
    except ActorSetError as exc:
        _fail(str(exc))
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    configure_logging()
    training = _train_default_beside(log_path) if beside else None
    try:
        uvicorn.run(create_app(settings, training=training), host=host, port=port, log_level="warning",
                    timeout_graceful_shutdown=30)
    finally:
        if training is not None and training.poll() is None:
            training.terminate()


def _train_default_beside(log_path: Path):
    """Start `stancelens train --out models/default` at the lowest CPU priority (`nice -n 19`), logging to
    `log_path`; returns the process."""
    import shutil
    import subprocess

    log_path.parent.mkdir(parents=True, exist_ok=True)
    typer.echo(f"{DEFAULT_MODEL_DIR} is missing: serving the lexicon rules now while it trains beside the service "
               f"(log: {log_path}); the service switches to it when it is saved", err=True)
    command = [sys.executable, "-m", "stancelens.cli", "train", "--out", str(DEFAULT_MODEL_DIR), "--quiet"]
    if shutil.which("nice"):
        command = ["nice", "-n", "19", *command]
    with log_path.open("w", encoding="utf-8") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)


@app.command()
def score(
    inputs: Annotated[list[str], typer.Argument(
        help="RSS/Atom feeds (files or http(s) URLs), JSONL/CSV of articles, folders of .txt/.html, or - for stdin.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Pair rows; mention rows go beside it (s.parquet → "
                                      "s.mentions.parquet), errors to RESULTS.errors.jsonl.")],
    fmt: Annotated[str | None, typer.Option("--format", help="parquet, jsonl or csv (default: from --out's "
                                            "extension, else parquet).")] = None,
    model: Annotated[str | None, model_option(f"{DEFAULT_MODEL_DIR}, trained first when missing")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Documents per prediction batch.")] = 16,
    runner: Annotated[str, typer.Option("--runner", "--engine", help="local (this process) or ray (a Ray Data "
                                        "actor pool).")] = "local",
    workers: Annotated[int | None, typer.Option(min=1, help="Ray actors (default: the cluster's CPUs).")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Existing Ray cluster, e.g. ray://head:10001 "
                                                    "(default: $RAY_ADDRESS, else a local Ray).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace results already at --out.")] = False,
    append: Annotated[bool, typer.Option("--append", help="Add to results already at --out the rows whose row_id "
                                         "is new (a daily run over a live feed).")] = False,
    checkpoint_docs: Annotated[int, typer.Option(min=1, help="Commit a checkpoint part every N documents.")] = 1000,
    checkpoint_seconds: Annotated[float, typer.Option(min=0.0, help="... or every S seconds.")] = 60.0,
    partition_by: Annotated[str, typer.Option("--partition-by", help="none (one file), month or outlet: RESULTS as "
                                              "a Parquet dataset partitioned so (readable by pandas, pyarrow, "
                                              "DuckDB).")] = "none",
    id_field: Annotated[str | None, typer.Option(help="Article tables: id column (default id/doc_id/guid).")] = None,
    text_field: Annotated[str | None, typer.Option(help="Text column (default text/content/body/article).")] = None,
    title_field: Annotated[str | None, typer.Option(help="Title column (default title/headline).")] = None,
    url_field: Annotated[str | None, typer.Option(help="URL column (default url/link).")] = None,
    source_field: Annotated[str | None, typer.Option(help="Outlet column (default source/outlet/publisher).")] = None,
    date_field: Annotated[str | None, typer.Option(help="Date column (default date/published/published_at).")] = None,
    fast: Annotated[bool | None, fast_option("the fast path where it is bf16, which holds the accuracy bounds of "
                                             "`stancelens bench`; fp32 where it would be int8")] = None,
    actors: Annotated[Path | None, actors_option()] = None,
    actors_mode: Annotated[str, actors_mode_option()] = "add",
) -> None:
    """Score news feeds and article collections into pair and mention tables; resumable after a crash."""
    if fast is None:
        from stancelens.model.precision import FAST_BACKEND

        fast = FAST_BACKEND == "bf16"
    from stancelens.batch.feeds import FieldMap, InputReader
    from stancelens.batch.results import check_partition
    from stancelens.batch.runners import LocalRunner, RayRunner
    from stancelens.batch.scoring import ScoreRun, check_output
    from stancelens.batch.tables import ScoringError, infer_format

    if runner not in ("local", "ray"):
        _fail(f"--runner: expected local or ray, found {runner!r}")
    if overwrite and append:
        _fail("--overwrite and --append: expected at most one, found both; choose one")
    mode = "overwrite" if overwrite else "append" if append else "refuse"
    try:
        check_partition(partition_by, infer_format(out, fmt))
        check_output(out, mode)  # before the model is loaded (or trained)
    except ScoringError as exc:
        _fail(str(exc))
    actor_set = read_actor_set_early(actors, actors_mode)
    spec = resolve_model_spec(model)
    predictor = with_actor_set(resolve_predictor(spec, fast), actors, actors_mode)
    fields = FieldMap(id=id_field, text=text_field, title=title_field, url=url_field, source=source_field,
                      date=date_field)
    scorer = (RayRunner(spec, workers=workers, address=ray_address, fast=fast, actor_set=actor_set,
                        actors_mode=actors_mode) if runner == "ray"
              else LocalRunner(predictor))
    run = ScoreRun(inputs, out, predictor, scorer, fmt, batch_size, InputReader(fields),
                   checkpoint_docs, checkpoint_seconds, output_mode=mode, partition_by=partition_by)
    try:
        summary = run.run()
    except ScoringError as exc:
        _fail(str(exc))
    typer.echo(summary.line())


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="Pair rows written by `stancelens score` (mentions are read "
                                            "from beside it).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder: index.html, PNG plots, CSV/HTML tables.")],
    period: Annotated[str, typer.Option(help="Time bucket for stance over time: week or month.")] = "month",
    top: Annotated[int, typer.Option(min=1, help="Pairs/actors plotted (by number of rows).")] = 6,
) -> None:
    """Aggregate scored results: stance share per pair over time and per outlet, framing per actor and outlet."""
    from stancelens.batch.report import ReportError, build_report

    try:
        index = build_report(results, out, period=period, top=top)
    except ReportError as exc:
        _fail(str(exc))
    typer.echo(f"report: {index}")


@app.command()
def bench(
    model: Annotated[Path, typer.Option(help="Trained model directory.")] = DEFAULT_MODEL_DIR,
    docs: Annotated[int | None, typer.Option(min=1, help="Documents (default: the 5 seeds and the 20 bench "
                                             "documents; more repeat them).")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per row; the table shows medians.")] = 3,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the results as JSON.")] = None,
    fast_backend: Annotated[str | None, fast_backend_option()] = None,
    dse: Annotated[Path | None, typer.Option(help="DSE valid.txt for the accuracy check (default: "
                                             "$STANCELENS_DATA/dse/valid.txt).")] = None,
    accuracy: Annotated[bool, typer.Option(help="Check the fast path against fp32 on seed gold and DSE.")] = True,
    serve: Annotated[str | None, typer.Option("--serve", help="Instead: load-test the service at this URL.")] = None,
    clients: Annotated[int, typer.Option(min=1, help="--serve: concurrent clients.")] = 32,
    requests: Annotated[int, typer.Option(min=1, help="--serve: requests in all.")] = 640,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for torch and ONNX Runtime (default: "
                                                "torch's, one per core).")] = None,
    batch: Annotated[bool, typer.Option("--batch", help="Instead: peak RSS and throughput of `score` (lexicon) on "
                                        "synthetic corpora, and of `report` on a synthetic partitioned output.")] = False,
    batch_sizes: Annotated[str, typer.Option(help="--batch: corpus sizes in documents.")] = "10000,50000,200000",
    report_rows: Annotated[int, typer.Option(min=0, help="--batch: pair rows of the report benchmark (0: skip).")
                           ] = 2_000_000,
    parser: Annotated[bool, typer.Option("--parser", help="Instead: time per sentence of mention finding with and "
                                         "without the resolver, and of spaCy's parser where installed "
                                         "(stancelens[parser]).")] = False,
    resolution: Annotated[list[Path] | None, typer.Option(help="--parser: also score these resolution sets "
                                                          "with the parser's subject decisions (repeatable).")
                          ] = None,
) -> None:
    """Throughput, latency and memory of the naive HF pipeline, the predictor fp32 and the fast path."""
    from stancelens.bench.load import run_serve
    from stancelens.bench.speed import run_bench

    if parser:
        from stancelens.bench.parser import parser_rows

        rows = parser_rows(repeats, typer.echo, resolution or [])
        if out is not None:
            from stancelens.model.files import atomic_writer

            with atomic_writer(out, "w") as handle:
                handle.write(json.dumps({"parser": rows}, indent=2) + "\n")
        return
    if batch:
        from stancelens.bench.batch import report_rows as run_report_rows
        from stancelens.bench.batch import scoring_rows

        try:
            sizes = [int(x) for x in batch_sizes.split(",") if x.strip()]
        except ValueError:
            _fail(f"--batch-sizes: expected comma-separated document counts, found {batch_sizes!r}")
        if not sizes or min(sizes) < 1:
            _fail(f"--batch-sizes: expected positive document counts, found {batch_sizes!r}")
        result = {"scoring": scoring_rows(sizes, typer.echo),
                  "report": run_report_rows(report_rows, typer.echo) if report_rows else []}
        if out is not None:
            from stancelens.model.files import atomic_writer

            with atomic_writer(out, "w") as handle:
                handle.write(json.dumps(result, indent=2) + "\n")
        return

    if serve is not None:
        result = run_serve(serve, clients, max(requests, clients),
                           model if (model / "stancelens.json").exists() else None, say=typer.echo)
        if out is not None:
            from stancelens.model.files import atomic_writer

            with atomic_writer(out, "w") as handle:
                handle.write(json.dumps(result, indent=2) + "\n")
        return
    from stancelens.model.precision import BACKENDS, backend_choices

    if fast_backend is not None and fast_backend not in BACKENDS:
        _fail(f"--fast-backend: expected {backend_choices()}, found {fast_backend!r}")
    if not (model / "stancelens.json").exists():
        _fail(f"model {model}: expected a trained model directory with stancelens.json, found none; train one "
              f"with `stancelens train --out {model}` or pass --model DIR")
    try:
        run_bench(model, docs, repeats, out, fast_backend, dse, accuracy, threads=threads, say=typer.echo)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
