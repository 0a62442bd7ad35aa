"""Evaluation reports: a model against gold (and DSE/SEESAW validation), or annotators against each other.

One report format for both: `report.json` (stable keys), `report.md` for people, confusion-matrix
PNGs. Model scoring is done twice on gold: with the gold mentions given (classification alone)
and end to end (the model's own mentions, so detection errors count).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch

from stancelens.model.annotation import DocumentAnnotation
from stancelens.model.files import atomic_writer
from stancelens.model.predictor import DocumentInput, Predictor
from stancelens.training import data as D
from stancelens.training.calibration import expected_calibration_error
from stancelens.training.items import rows_to_items
from stancelens.training.metrics import classification_report, span_prf
from stancelens.training.relabelled import relabelled_rows

MISSING = "(no pair)"
# The descriptor phrases codebook 1.0.0 counted as mentions (§2.6 of that version): a prediction is
# compared with 1.0.0 gold on that mention set.
_DESCRIPTORS_1_0 = re.compile(
    r"(?i:the) (?:(?:Palestinian )?(?:militant |terrorist |terror |Islamist |radical |extremist |armed |resistance )+"
    r"|Palestinian )(?:group|organi[sz]ation|movement|faction)$"
)


def as_codebook_1_0(doc: DocumentAnnotation) -> DocumentAnnotation:
    """A prediction seen through codebook 1.0.0, to compare with gold written under it: pronouns and the
    descriptors 1.0.0 did not count are dropped with the pairs that existed only through them, and
    `reported` voice is folded into `author` (GUIDELINES.md §4.3)."""
    sentences = []
    for s in doc.sentences:
        mentions = []
        for m in s.mentions:
            if m.via == "coreference" and not (m.kind == "descriptor" and _DESCRIPTORS_1_0.match(m.text)):
                continue
            framing = m.framing
            if framing.voice == "reported":
                framing = framing.model_copy(update={"voice": "author", "speaker": None, "speaker_text": None})
            mentions.append(m.model_copy(update={"framing": framing, "via": None, "antecedent": None}))
        actors = {m.actor for m in mentions}
        pairs = [p.model_copy(update={"via": None}) for p in s.pairs if p.source in actors and p.target in actors]
        sentences.append(s.model_copy(update={"mentions": mentions, "pairs": pairs}))
    return doc.model_copy(update={"sentences": sentences})


def _legacy(gold: Sequence[DocumentAnnotation]) -> bool:
    """Whether gold was written under codebook 1.0.0 (no voice `reported`, no resolved pronouns)."""
    return all((d.label_standard or "1.0.0") == "1.0.0" for d in gold)


def _mentions(docs: Sequence[DocumentAnnotation]) -> dict:
    return {(d.doc_id, m.start, m.end): m for d in docs for s in d.sentences for m in s.mentions}


def _pairs(docs: Sequence[DocumentAnnotation]) -> dict:
    return {(d.doc_id, s.start, p.source, p.target): (p, s) for d in docs for s in d.sentences for p in s.pairs}


def compare(gold: Sequence[DocumentAnnotation], pred: Sequence[DocumentAnnotation], stance_labels, framing_labels) -> dict:
    """Field-by-field comparison of predictions with gold (same documents).

    Items are matched by document id and sentence offsets: only sentences present in both are scored
    (a gold file may annotate a few sentences of a document); the others are listed under `unmatched`.
    """
    gold_spans = {(d.doc_id, s.start, s.end) for d in gold for s in d.sentences}
    pred_spans = {(d.doc_id, s.start, s.end) for d in pred for s in d.sentences}
    shared = gold_spans & pred_spans
    gold = [_only(d, shared) for d in gold]
    pred = [_only(d, shared) for d in pred]
    gm, pm = _mentions(gold), _mentions(pred)
    report: dict = {}
    report["mentions"] = span_prf({(*k, m.actor) for k, m in gm.items()}, {(*k, m.actor) for k, m in pm.items()})
    # The kinds codebook 1.1.0 added (descriptors and pronouns resolved by coreference) scored on their own,
    # so that figures on names stay comparable with older gold.
    report["mentions_by_via"] = {
        via: span_prf({(*k, m.actor) for k, m in gm.items() if (m.via or "name") == via},
                      {(*k, m.actor) for k, m in pm.items() if (m.via or "name") == via})
        for via in ("name", "coreference")
    }
    gp, pp = _pairs(gold), _pairs(pred)
    keys = sorted(set(gp) | set(pp), key=str)
    g_lab = [gp[k][0].stance if k in gp else MISSING for k in keys]
    p_lab = [pp[k][0].stance if k in pp else MISSING for k in keys]
    stance = classification_report(g_lab, p_lab, [*stance_labels, MISSING])
    stance["macro_f1"] = _macro(stance, stance_labels)
    report["stance"] = stance
    common = [k for k in gm if k in pm]
    framing = classification_report([gm[k].framing.label for k in common], [pm[k].framing.label for k in common],
                                    list(framing_labels))
    report["framing"] = framing
    framed = [k for k in common if gm[k].framing.label != "none" and pm[k].framing.label != "none"]
    report["voice"] = classification_report([gm[k].framing.voice for k in framed],
                                            [pm[k].framing.voice for k in framed], ["author", "quoted", "reported"])
    report["negation"] = classification_report([str(gm[k].framing.negated) for k in framed],
                                               [str(pm[k].framing.negated) for k in framed], ["False", "True"])
    report["speaker_accuracy"] = (
        sum(gm[k].framing.speaker == pm[k].framing.speaker for k in framed) / len(framed) if framed else None
    )
    # Breakdown per ordered actor pair and per voice.
    by_pair: dict = defaultdict(lambda: {"gold": [], "pred": []})
    for k, g, p in zip(keys, g_lab, p_lab):
        by_pair[f"{k[2]}->{k[3]}"]["gold"].append(g)
        by_pair[f"{k[2]}->{k[3]}"]["pred"].append(p)
    report["stance_by_actor_pair"] = {
        name: {"n": len(v["gold"]), "accuracy": sum(a == b for a, b in zip(v["gold"], v["pred"])) / len(v["gold"]),
               "gold": _counts(v["gold"]), "pred": _counts(v["pred"])}
        for name, v in sorted(by_pair.items(), key=lambda x: -len(x[1]["gold"]))
    }
    by_voice: dict = defaultdict(lambda: {"gold": [], "pred": []})
    for k in common:
        by_voice[gm[k].framing.voice]["gold"].append(gm[k].framing.label)
        by_voice[gm[k].framing.voice]["pred"].append(pm[k].framing.label)
    report["framing_by_voice"] = {
        v: classification_report(x["gold"], x["pred"], list(framing_labels)) for v, x in by_voice.items()
    }
    # Calibration of stance probabilities where both have the pair.
    probs, ys = [], []
    for k in keys:
        if k in gp and k in pp and pp[k][0].probs:
            probs.append([pp[k][0].probs.get(label, 0.0) for label in stance_labels])
            ys.append(list(stance_labels).index(gp[k][0].stance))
    report["ece"] = expected_calibration_error(torch.tensor(probs), torch.tensor(ys)) if ys else None
    report["disagreements"] = _disagreements(gp, pp, gm, pm)
    report["unmatched"] = {
        "gold_only_mentions": [f"{k[0]}:{k[1]}-{k[2]} {gm[k].text!r} ({gm[k].actor})" for k in gm if k not in pm],
        "pred_only_mentions": [f"{k[0]}:{k[1]}-{k[2]} {pm[k].text!r} ({pm[k].actor})" for k in pm if k not in gm],
        "gold_only_sentences": [f"{d}:{a}-{b}" for d, a, b in sorted(gold_spans - pred_spans)],
        "pred_only_sentences": len(pred_spans - gold_spans),
    }
    return report


def _only(doc: DocumentAnnotation, spans: set) -> DocumentAnnotation:
    kept = [s for s in doc.sentences if (doc.doc_id, s.start, s.end) in spans]
    return doc if len(kept) == len(doc.sentences) else doc.model_copy(update={"sentences": kept})


def evaluation_report(gold_sets: Sequence[Sequence[DocumentAnnotation]], names: Sequence[str],
                      pred: Sequence[DocumentAnnotation] | None = None, predictor: Predictor | None = None,
                      dse: Path | None = None, seesaw: Path | None = None,
                      real_news: Sequence[str] = (), dse_dir: Path | None = None,
                      resolution: Sequence[Path] = (), second_pass: Sequence[Path] = (),
                      adjudication: Sequence[Path] = ()) -> tuple[dict, str]:
    """The one report behind `stancelens evaluate` and POST /v1/evaluate: (report, kind).

    pred given: predictions against the one gold set; predictor given: the model against gold (and
    DSE/SEESAW); otherwise two or more gold sets: agreement. Items that the readers could not use
    (`skipped` of an AnnotationSet) are listed under `skipped_items`.
    """
    if pred is not None:
        if len(gold_sets) != 1:
            raise ValueError(f"predictions need exactly one gold set to compare with, found {len(gold_sets)}")
        from stancelens.model.labelset import default_label_standard

        std = default_label_standard()
        by_id = {d.doc_id: d for d in pred}
        common = [d for d in gold_sets[0] if d.doc_id in by_id]
        first = pred[0] if pred else None
        report: dict = {"model": (first.model.model_dump() if first is not None and first.model else
                                  {"name": getattr(pred, "name", "predictions"), "version": "-", "hash": None}),
                        "gold_mentions": compare(common, [by_id[d.doc_id] for d in common], std.stance, std.framing)}
        report["end_to_end"] = report["gold_mentions"]
        report["unmatched_documents"] = {
            "gold_only": sorted({d.doc_id for d in gold_sets[0]} - set(by_id)),
            "pred_only": sorted(set(by_id) - {d.doc_id for d in gold_sets[0]}),
        }
        report["summary"] = summary(report)
        kind = "model"
    elif predictor is not None:
        report = evaluate_predictor(predictor, gold_sets[0] if gold_sets else None, dse, seesaw, real_news, dse_dir,
                                    resolution, second_pass, adjudication)
        kind = "model"
    elif len(gold_sets) >= 2:
        from stancelens.training.agreement import agreement_report

        report = agreement_report(gold_sets, list(names))
        kind = "agreement"
    else:
        raise ValueError("expected predictions or a model with one gold set, or two or more gold sets for agreement; "
                         f"found {len(gold_sets)} gold set(s) and nothing to compare")
    skipped = [x for s in [*gold_sets, *([pred] if pred is not None else [])] for x in getattr(s, "skipped", [])]
    report["skipped_items"] = skipped
    return report, kind


def _macro(report: dict, labels) -> float:
    per_class = report.get("per_class") or {}
    if not per_class:  # nothing to score (no gold items of this task)
        return 0.0
    present = [label for label in labels if per_class[label]["support"] > 0
               or any(row[i] for row in report["confusion"] for i in [report["labels"].index(label)])]
    f1s = [per_class[label]["f1"] for label in present]
    return sum(f1s) / len(f1s) if f1s else 0.0


def _counts(values: list[str]) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _disagreements(gp, pp, gm, pm) -> list[dict]:
    rows = []
    for k, (g, s) in gp.items():
        p = pp.get(k)
        if p is None or p[0].stance != g.stance:
            conf = p[0].probs.get(p[0].stance) if p and p[0].probs else None
            rows.append({"task": "stance", "doc_id": k[0], "sentence": s.text, "item": f"{k[2]}->{k[3]}",
                         "gold": g.stance, "pred": p[0].stance if p else MISSING, "confidence": conf})
    for k, g in gm.items():
        p = pm.get(k)
        if p is not None and p.framing.label != g.framing.label:
            conf = p.framing.probs.get(p.framing.label) if p.framing.probs else None
            rows.append({"task": "framing", "doc_id": k[0], "sentence": g.text, "item": f"{g.text} ({g.actor})",
                         "gold": g.framing.label, "pred": p.framing.label, "confidence": conf})
    # Confident mistakes first: they are the most informative to adjudicate.
    return sorted(rows, key=lambda r: -(r["confidence"] or 0.0))


def evaluate_predictor(
    predictor: Predictor,
    gold: Sequence[DocumentAnnotation] | None,
    dse: Path | None = None,
    seesaw: Path | None = None,
    real_news: Sequence[str] = (),
    dse_dir: Path | None = None,
    resolution: Sequence[Path] = (),
    second_pass: Sequence[Path] = (),
    adjudication: Sequence[Path] = (),
) -> dict:
    """The model against gold (seed-style annotations), DSE in its own convention, SEESAW, the real-news
    dev/test halves of the relabelled DSE valid lines (our codebook; pairs given), and the resolution
    test set (who is meant: descriptors, pronouns, voice, speakers), with a second annotation of its items when
    given (agreement of the two, and the system on the items where they agree) and an adjudication of their
    disagreements (the system against the set's labels with the disputed items settled)."""
    standard = predictor.standard
    report: dict = {"model": predictor.info.model_dump()}
    if gold:
        given = predictor.annotate_given_mentions(gold)
        e2e = predictor.annotate([DocumentInput(d.doc_id, d.text) for d in gold])
        if _legacy(gold):
            given, e2e = [as_codebook_1_0(d) for d in given], [as_codebook_1_0(d) for d in e2e]
            report["codebook"] = "1.0.0 (predictions folded: no pronoun mentions, reported voice as author)"
        report["gold_mentions"] = compare(gold, given, standard.stance, standard.framing)
        report["end_to_end"] = compare(gold, e2e, standard.stance, standard.framing)
    if dse is not None:
        path = dse / "valid.txt" if dse.is_dir() else dse
        rows = list(D.dse_examples(path, standard))
        report["dse"] = _dse_report(predictor, rows, standard)
    if seesaw is not None:
        rows = list(D.seesaw_examples(seesaw, "valid", standard))
        report["seesaw"] = _rows_stance_report(predictor, rows, standard)
    for split in real_news:
        if dse_dir is None:
            raise FileNotFoundError(f"real-news {split}: expected the DSE folder (STANCELENS_DATA/dse) to read the "
                                    "relabelled lines from, found none; set STANCELENS_DATA")
        rows = relabelled_rows(dse_dir, split, standard)
        report[f"real_news_{split}"] = {**_rows_stance_report(predictor, rows, standard), "lines": len(rows)}
    if resolution:
        from stancelens.training.resolution_score import read_resolution_set, score_resolution

        documents = [d for path in resolution for d in read_resolution_set(path)]
        readings: list | None = [] if second_pass or adjudication else None
        report["resolution"] = {"files": [str(p) for p in resolution],
                                **score_resolution(predictor, documents, readings)}
        from stancelens.training.second_pass import adjudicated_report, read_second_pass, second_pass_report

        if second_pass:
            report["resolution"]["second_pass"] = {"files": [str(p) for p in second_pass],
                                                   **second_pass_report(readings or [], read_second_pass(second_pass))}
        if adjudication:
            report["resolution"]["adjudicated"] = {"files": [str(p) for p in adjudication],
                                                   **adjudicated_report(readings or [], read_second_pass(adjudication))}
    report["summary"] = summary(report)
    return report


def _dse_report(predictor: Predictor, rows: list[dict], standard) -> dict:
    pairs, _, pair_rows, _, _ = rows_to_items(rows)
    probs, _ = predictor.engine.classify(pairs, [])
    labels = [max(p, key=lambda k: p[k]) for p in probs]
    gold, pred = [], []
    for i in range(0, len(pairs), 2):
        row = pair_rows[i]["row"]
        pred.append(str(D.directed_to_dse(labels[i], labels[i + 1], probs[i], probs[i + 1])))
        gold.append(str(row["dse_label"]))
    return classification_report(gold, pred, ["0", "1", "2", "3", "4"])


def _rows_stance_report(predictor: Predictor, rows: list[dict], standard) -> dict:
    pairs, ys, _, _, _ = rows_to_items(rows)
    probs, _ = predictor.engine.classify(pairs, [])
    return classification_report([standard.stance[y] for y in ys], [max(p, key=lambda k: p[k]) for p in probs],
                                 list(standard.stance))


def _real_news_summary(section: dict) -> dict:
    per_class = section.get("per_class", {})
    return {"macro_f1": section.get("macro_f1"),
            **{f"{label}_recall": per_class.get(label, {}).get("recall") for label in ("support", "oppose")}}


def summary(report: dict) -> dict:
    """The stable keys printed by `evaluate --json`."""
    gm = report.get("gold_mentions", {})
    e2e = report.get("end_to_end", {})
    return {
        "stance.macro_f1": gm.get("stance", {}).get("macro_f1"),
        "stance.micro_f1": gm.get("stance", {}).get("micro_f1"),
        "framing.macro_f1": gm.get("framing", {}).get("macro_f1"),
        "framing.micro_f1": gm.get("framing", {}).get("micro_f1"),
        "stance_e2e.macro_f1": e2e.get("stance", {}).get("macro_f1"),
        "framing_e2e.macro_f1": e2e.get("framing", {}).get("macro_f1"),
        "mentions.f1": e2e.get("mentions", {}).get("f1"),
        "mentions.precision": e2e.get("mentions", {}).get("precision"),
        "mentions.recall": e2e.get("mentions", {}).get("recall"),
        "dse.micro_f1": report.get("dse", {}).get("micro_f1"),
        "dse.macro_f1": report.get("dse", {}).get("macro_f1"),
        "seesaw.macro_f1": report.get("seesaw", {}).get("macro_f1"),
        **{f"real_news_{split}.{key}": value for split in ("dev", "test") if f"real_news_{split}" in report
           for key, value in _real_news_summary(report[f"real_news_{split}"]).items()},
        **{f"resolution.{side}.{key}": report["resolution"][side][key] for side in ("system", "baseline")
           for key in ("resolution_accuracy", "voice_accuracy", "speaker_accuracy") if "resolution" in report},
        **{f"resolution.adjudicated.{key}": report["resolution"]["adjudicated"][key]
           for key in ("resolution_accuracy", "voice_accuracy", "speaker_accuracy")
           if "adjudicated" in report.get("resolution", {})},
        **{f"resolution.second_pass.{question}.{key}": report["resolution"]["second_pass"][question].get(key)
           for question in ("refers_to", "voice", "speaker") for key in ("alpha", "agreement", "system_on_agreed")
           if "second_pass" in report.get("resolution", {}) and key in report["resolution"]["second_pass"][question]},
        "ece": gm.get("ece"),
    }


# -- writing -----------------------------------------------------------------------------------
def confusion_png(report: dict, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = report["labels"]
    matrix = report["confusion"]
    if not matrix:
        return
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 0.8 + 0.6 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    peak = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > peak / 2 else "black", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: dict, out: Path, kind: str = "model") -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out / "report.json") as handle:
        json.dump(report, handle, indent=2, default=str)
    lines = [f"# stancelens evaluation ({kind})", ""]
    if kind == "model":
        lines.append(f"Model: `{report['model']['name']}` version `{report['model']['version']}` hash `{report['model'].get('hash')}`")
        lines += ["", "| metric | value |", "|---|---|"]
        for key, value in report["summary"].items():
            lines.append(f"| {key} | {'—' if value is None else f'{value:.4f}'} |")
        for part in ("gold_mentions", "end_to_end"):
            if part not in report:
                continue
            lines += ["", f"## {part.replace('_', ' ')}", ""]
            for task in ("stance", "framing", "voice", "negation"):
                r = report[part][task]
                lines.append(f"### {task} (macro-F1 {r['macro_f1']:.3f}, micro-F1 {r['micro_f1']:.3f}, n={r['support']})")
                lines += ["", "| label | P | R | F1 | n |", "|---|---|---|---|---|"]
                for label, m in r["per_class"].items():
                    lines.append(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
                lines.append("")
                if r["confusion"]:
                    name = f"confusion_{part}_{task}.png"
                    confusion_png(r, f"{task} ({part})", out / name)
                    (out / f"confusion_{part}_{task}.json").write_text(
                        json.dumps({"labels": r["labels"], "matrix": r["confusion"]}), encoding="utf-8")
                    lines += [f"![{task}]({name})", ""]
            lines += ["### stance by ordered actor pair", "", "| pair | n | accuracy |", "|---|---|---|"]
            for name, v in list(report[part]["stance_by_actor_pair"].items())[:25]:
                lines.append(f"| {name} | {v['n']} | {v['accuracy']:.2f} |")
            lines += ["", "### disagreements (most confident first)", "", "| task | item | gold | pred | conf | sentence |",
                      "|---|---|---|---|---|---|"]
            for d in report[part]["disagreements"][:40]:
                conf = "" if d["confidence"] is None else f"{d['confidence']:.2f}"
                lines.append(f"| {d['task']} | {d['item']} | {d['gold']} | {d['pred']} | {conf} | {d['sentence'][:160]} |")
        for part in ("dse", "seesaw"):
            if part in report:
                r = report[part]
                lines += ["", f"## {part.upper()} validation (macro-F1 {r['macro_f1']:.3f}, micro-F1 {r['micro_f1']:.3f})", ""]
                confusion_png(r, part, out / f"confusion_{part}.png")
                (out / f"confusion_{part}.json").write_text(
                    json.dumps({"labels": r["labels"], "matrix": r["confusion"]}), encoding="utf-8")
                lines += [f"![{part}](confusion_{part}.png)", ""]
    else:
        lines.append("Annotators: " + ", ".join(report["annotators"]))
        lines += ["", "| task | units | Krippendorff α | Fleiss κ | raw agreement |", "|---|---|---|---|---|"]
        for task, t in report["tasks"].items():
            lines.append(f"| {task} | {t['units']} | {_fmt(t['krippendorff_alpha'])} | {_fmt(t['fleiss_kappa'])} | "
                         f"{_fmt(t['raw_agreement'])} |")
        for task, t in report["tasks"].items():
            lines += ["", f"## {task}", "", "Cohen's κ: " + ", ".join(f"{k}: {_fmt(v)}" for k, v in t["cohen_kappa"].items()),
                      "", "| label | α |", "|---|---|"]
            lines += [f"| {label} | {_fmt(a)} |" for label, a in t["per_label_alpha"].items()]
            lines += ["", "| document | α |", "|---|---|"]
            lines += [f"| {d} | {_fmt(a)} |" for d, a in t["per_document_alpha"].items()]
        lines += ["", "## mention spans", "", "| annotators | P | R | F1 |", "|---|---|---|---|"]
        for s in report["mention_span_f1"]:
            lines.append(f"| {s['annotators']} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} |")
    unmatched = report.get("unmatched", {})
    if report.get("skipped_items") or any(unmatched.values()):
        lines += ["", "## not matched or not used", ""]
        lines += [f"- {x}" for x in report.get("skipped_items", [])[:200]]
        for what, items in unmatched.items():
            lines += [f"- {what}: {key} (only {', '.join(who)})" for key, who in list(items.items())[:200]]
    with atomic_writer(out / "report.md") as handle:
        handle.write("\n".join(lines) + "\n")


def _fmt(x) -> str:
    return "—" if x is None else f"{x:.3f}"
