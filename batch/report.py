"""Report on scored results: the aggregates and plots a researcher would otherwise make by hand, with
their uncertainty.

`build_report(RESULTS, DIR)` scans the pair rows and the mention rows beside them (a file, or a
partitioned Parquet dataset written by `stancelens score --partition-by`) batch by batch, reading only
the columns each step needs, so that memory follows the number of groups, not of rows. It writes into DIR:

- ``stance_over_time.{csv,html,png}``  stance share per ordered pair per week or month
- ``stance_by_outlet.{csv,html,png}``  stance share per ordered pair per outlet
- ``stance_outlets_compared.{csv,html,png}`` one pair's stance share side by side across outlets, same periods
- ``framing_by_actor.{csv,html,png}``  framing category share per actor, author's voice vs quoted
- ``framing_by_outlet.{csv,html,png}`` the same per actor and outlet
- ``evidence_<figure>.{csv,html}``     the sentences behind each figure (the aggregate HTML links each
  group to them)
- ``index.html``                        the summary that links all of it

Every share carries `n` (rows), the number of documents and two 95 % intervals: Wilson's (rows as
independent) and a bootstrap over documents (rows of one article are not independent: resampling whole
documents keeps that clustering). The plots draw the bootstrap interval (Wilson's where a group has a
single document) as error bars; groups with fewer than `MIN_ROWS` rows or `MIN_DOCUMENTS` documents are
drawn in grey and their table row says why.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from stancelens.batch.tables import infer_format, mentions_path

UNKNOWN_OUTLET = "(unknown outlet)"
UNDATED = "(undated)"
EVIDENCE_PER_GROUP_HTML = 50  # the CSV has them all; the page stays small enough to open
STANCE_COLORS = {"support": "#2e7d32", "oppose": "#c62828", "neutral": "#9e9e9e"}
MIN_ROWS = 10
MIN_DOCUMENTS = 3
BOOTSTRAP_RESAMPLES = 400
BOOTSTRAP_MAX_DOCUMENTS = 20_000  # larger groups: the linearised cluster interval (same target, closed form)
Z95 = 1.959964
BATCH_ROWS = 131_072


class ReportError(ValueError):
    pass


# -- reading ------------------------------------------------------------------------------------


class ResultsScan:
    """Batches of one results table (file or partitioned dataset), projected onto the columns asked for."""

    def __init__(self, path: Path, what: str, results: Path):
        self.path, self.what = path, what
        if not path.exists():
            raise ReportError(
                f"{path}: expected the results of `stancelens score --out {results}`, found no such file; run the "
                f"scoring first (its mention rows sit beside it as {mentions_path(results).name})"
            )
        self.fmt = "parquet" if path.is_dir() else infer_format(path, None)
        try:
            self.schema = self._dataset().schema
        except Exception as exc:
            raise ReportError(f"{path}: expected a {self.fmt} results table, found one that cannot be read "
                              f"({exc})") from exc

    def _dataset(self):
        import pyarrow.dataset as ds

        if self.fmt == "parquet":
            return ds.dataset(self.path, format="parquet", partitioning="hive" if self.path.is_dir() else None)
        if self.fmt == "csv":
            return ds.dataset(self.path, format="csv")
        return ds.dataset(self.path, format="json")

    @property
    def names(self) -> set[str]:
        return set(self.schema.names)

    def batches(self, columns: list[str]) -> Iterator[pa.Table]:
        present = [c for c in columns if c in self.names]
        scanner = self._dataset().scanner(columns=present, batch_size=BATCH_ROWS)
        for batch in scanner.to_batches():
            if batch.num_rows:
                table = pa.Table.from_batches([batch])
                for col in columns:
                    if col not in present:
                        table = table.append_column(col, pa.nulls(table.num_rows, pa.string()))
                yield table


def open_results(results: Path) -> tuple[ResultsScan, ResultsScan]:
    pairs = ResultsScan(results, "pair rows", results)
    mentions = ResultsScan(mentions_path(results), "mention rows", results)
    for scan, needed in ((pairs, {"source", "target", "stance", "row_id", "sentence_text"}),
                         (mentions, {"actor", "framing", "voice", "row_id", "sentence_text"})):
        missing = needed - scan.names
        if missing:
            raise ReportError(f"{scan.path}: expected {scan.what} with columns {sorted(needed)}, found "
                              f"{sorted(missing)} missing; was it written by `stancelens score`?")
    return pairs, mentions


def period_of(when: pd.Series, period: str) -> pd.Series:
    """'YYYY-MM' per month, the Monday 'YYYY-MM-DD' per week, '(undated)' without a date."""
    if period == "month":
        label = when.dt.strftime("%Y-%m")
    elif period == "week":
        monday = (when - pd.to_timedelta(when.dt.day_of_week, unit="D")).dt.normalize()
        label = monday.dt.strftime("%Y-%m-%d")
    else:
        raise ReportError(f"--period: expected week or month, found {period!r}")
    return label.fillna(UNDATED)


def with_derived(table: pa.Table, period: str) -> pa.Table:
    """Adds `period` (from `published`, computed once per distinct date) and cleans `outlet`."""
    published = table.column("published")
    distinct = pc.unique(published)
    when = pd.to_datetime(pd.Series(distinct.to_pylist(), dtype="object"), utc=True, errors="coerce",
                          format="ISO8601")
    labels = pa.array(period_of(when, period).tolist(), pa.string())
    table = table.append_column("period", pc.take(labels, pc.index_in(published, distinct)))
    outlet = pc.if_else(pc.equal(pc.fill_null(table.column("outlet"), ""), ""), UNKNOWN_OUTLET,
                        pc.fill_null(table.column("outlet"), ""))
    return table.set_column(table.schema.get_field_index("outlet"), "outlet", outlet)


# -- intervals ----------------------------------------------------------------------------------


def wilson(k: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of k successes in n trials (vectorised)."""
    n = np.asarray(n, dtype=float)
    p = np.divide(k, n, out=np.zeros_like(n), where=n > 0)
    denom = 1 + z * z / np.maximum(n, 1)
    centre = (p + z * z / (2 * np.maximum(n, 1))) / denom
    half = z * np.sqrt(p * (1 - p) / np.maximum(n, 1) + z * z / (4 * np.maximum(n, 1) ** 2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def document_interval(k: np.ndarray, n: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """95 % interval of the share sum(k)/sum(n) where k and n are per document, columns being labels in k:
    a bootstrap over documents (Poisson weights), or for very large groups the linearised cluster interval."""
    docs = len(n)
    total = n.sum()
    share = k.sum(axis=0) / total
    if docs < 2:
        return np.full_like(share, np.nan), np.full_like(share, np.nan)
    if docs > BOOTSTRAP_MAX_DOCUMENTS:
        resid = k - np.outer(n, share)
        se = np.sqrt((resid ** 2).sum(axis=0) * docs / (docs - 1)) / total
        return np.clip(share - Z95 * se, 0, 1), np.clip(share + Z95 * se, 0, 1)
    weights = rng.poisson(1.0, size=(BOOTSTRAP_RESAMPLES, docs)).astype(float)
    denominators = weights @ n
    keep = denominators > 0
    shares = (weights @ k)[keep] / denominators[keep][:, None]
    return np.quantile(shares, 0.025, axis=0), np.quantile(shares, 0.975, axis=0)


# -- aggregation --------------------------------------------------------------------------------


@dataclass
class Figure:
    """One figure of the report: which rows (pairs or mentions), grouping keys, label column and labels,
    the evidence columns, and how to plot its table."""

    name: str
    title: str
    rows: str  # "pairs" or "mentions"
    keys: list[str]
    label_col: str
    labels: list[str]
    evidence_columns: list[str]
    plot: Callable[[pd.DataFrame, Path], bool]
    # Every row as three small integers (group id, document id, label index), kept per batch: about 13
    # bytes a row, where the strings of the rows would take hundreds.
    group_ids: dict[str, int] = field(default_factory=dict)
    codes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


SEPARATOR = "\x1f"


def document_ids(hashes: pa.Array) -> np.ndarray:
    """A document's content hash as an int64 that is the same within one report (Python's string hash:
    64 bits, so a collision needs billions of documents), whatever the hash's format."""
    values = pc.fill_null(hashes, "").to_numpy(zero_copy_only=False)
    return np.fromiter((hash(h) for h in values), dtype=np.int64, count=len(values))


def count_rows(table: pa.Table, figure: Figure, documents: np.ndarray) -> None:
    """Code one batch's rows for the figure: group id (keys joined), document id (`documents`, computed once
    per batch for every figure), label index."""
    keys = [pc.cast(pc.fill_null(table.column(k), ""), pa.string()) for k in figure.keys]
    joined = pc.binary_join_element_wise(*keys, SEPARATOR) if len(keys) > 1 else keys[0]
    for value in pc.unique(joined).to_pylist():
        figure.group_ids.setdefault(value, len(figure.group_ids))
    known = pa.array(list(figure.group_ids), pa.string())
    groups = pc.index_in(joined, value_set=known).to_numpy(zero_copy_only=False).astype(np.int32)
    labels = pc.index_in(table.column(figure.label_col), value_set=pa.array(figure.labels, pa.string()))
    label_codes = pc.fill_null(labels, -1).to_numpy(zero_copy_only=False).astype(np.int16)
    keep = label_codes >= 0  # a label outside the standard (hand-edited results) is left out
    figure.codes.append((groups[keep], documents[keep], label_codes[keep]))


def share_table(figure: Figure, seed: int = 13) -> pd.DataFrame:
    """The figure's groups: n, documents, share per label with its Wilson and document-bootstrap intervals,
    the interval drawn, and a note for groups too small to read."""
    labels, keys = figure.labels, figure.keys
    columns = ["group", *keys, "n", "documents", *[f"share_{lab}" for lab in labels], "note"]
    if not figure.codes or not sum(len(c[0]) for c in figure.codes):
        return pd.DataFrame(columns=columns)
    g = np.concatenate([c[0] for c in figure.codes])
    d = np.concatenate([c[1] for c in figure.codes])
    lab = np.concatenate([c[2] for c in figure.codes])
    figure.codes.clear()
    order = np.lexsort((lab, d, g))
    g, d, lab = g[order], d[order], lab[order]
    names = list(figure.group_ids)
    # Groups in the order of their keys (as a table a reader scans); documents within a group contiguous.
    key_of = {i: tuple(names[i].split(SEPARATOR)) if len(keys) > 1 else (names[i],) for i in range(len(names))}
    bounds = np.flatnonzero(np.r_[True, g[1:] != g[:-1], True])
    rng = np.random.default_rng(seed)
    out = []
    for start, end in sorted(zip(bounds[:-1], bounds[1:], strict=True), key=lambda b: key_of[int(g[b[0]])]):
        docs_in = d[start:end]
        new_doc = docs_in[1:] != docs_in[:-1]
        doc_index = np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(new_doc, dtype=np.int64)))
        k = np.zeros((int(doc_index[-1]) + 1, len(labels)))
        np.add.at(k, (doc_index, lab[start:end]), 1.0)
        group_key = key_of[int(g[start])]
        n_doc = k.sum(axis=1)
        n = int(n_doc.sum())
        docs = len(k)
        share = k.sum(axis=0) / n
        w_lo, w_hi = wilson(k.sum(axis=0), np.full(len(labels), n))
        b_lo, b_hi = document_interval(k, n_doc, rng)
        row: dict[str, object] = dict(zip(keys, group_key, strict=True))
        row.update(n=n, documents=docs)
        for i, name in enumerate(labels):
            drawn_lo, drawn_hi = (w_lo[i], w_hi[i]) if math.isnan(b_lo[i]) else (b_lo[i], b_hi[i])
            row.update({f"share_{name}": round(float(share[i]), 4),
                        f"wilson_low_{name}": round(float(w_lo[i]), 4), f"wilson_high_{name}": round(float(w_hi[i]), 4),
                        f"doc_low_{name}": None if math.isnan(b_lo[i]) else round(float(b_lo[i]), 4),
                        f"doc_high_{name}": None if math.isnan(b_hi[i]) else round(float(b_hi[i]), 4),
                        f"low_{name}": round(float(drawn_lo), 4), f"high_{name}": round(float(drawn_hi), 4)})
        row["note"] = (f"too little data: n < {MIN_ROWS}" if n < MIN_ROWS else
                       f"too little data: fewer than {MIN_DOCUMENTS} documents" if docs < MIN_DOCUMENTS else "")
        out.append(row)
    table = pd.DataFrame(out)
    table.insert(0, "group", [f"g{i}" for i in range(len(table))])
    return table


# -- plots --------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt

    return plt


def _grid(count: int, width: float = 5.2, height: float = 3.6):
    plt = _plt()
    cols = min(3, count)
    rows = (count + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return plt, fig, list(axes.flat[:count])


GREY = "#c8c8c8"


def _dots(ax, frame: pd.DataFrame, category: str, labels: list[str], colors: dict, horizontal: bool) -> None:
    """Each label's share per category as a dot with its 95 % interval; small groups in grey."""
    positions = np.arange(len(frame))
    width = 0.8 / max(len(labels), 1)
    for i, lab in enumerate(labels):
        offset = (i - (len(labels) - 1) / 2) * width
        share = frame[f"share_{lab}"].to_numpy(dtype=float)
        err = np.vstack([share - frame[f"low_{lab}"].to_numpy(dtype=float),
                         frame[f"high_{lab}"].to_numpy(dtype=float) - share]).clip(min=0)
        small = (frame["note"] != "").to_numpy()
        for mask, color, label in ((~small, colors.get(lab), lab), (small, GREY, None)):
            if not mask.any():
                continue
            pos = positions[mask] + offset
            kwargs = dict(fmt="o", ms=4, capsize=2, color=color, ecolor=color, label=label, lw=1)
            if horizontal:
                ax.errorbar(share[mask], pos, xerr=err[:, mask], **kwargs)
            else:
                ax.errorbar(pos, share[mask], yerr=err[:, mask], **kwargs)
    ticks = [f"{c} (n={n}{', too few' if note else ''})" for c, n, note in
             zip(frame[category], frame["n"], frame["note"], strict=True)]
    if horizontal:
        ax.set_yticks(list(positions), ticks, fontsize=7)
        ax.set_xlim(-0.02, 1.02)
        ax.invert_yaxis()
    else:
        ax.set_xticks(list(positions), ticks, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)


def _save(plt, fig, path: Path, handles_from, note: str) -> None:
    handles, labels = handles_from.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)) or 1, fontsize=8, frameon=False)
    fig.text(0.01, 0.995, note, fontsize=7, color="#555", va="top")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


INTERVAL_NOTE = (f"dots: share; bars: 95% interval (bootstrap over documents; Wilson with one document); grey: "
                 f"fewer than {MIN_ROWS} rows or {MIN_DOCUMENTS} documents")


def plot_stance(table: pd.DataFrame, category: str, labels: list[str], pairs: list[tuple[str, str]], path: Path,
                horizontal: bool) -> bool:
    rows = table[table[category] != UNDATED] if category == "period" else table
    pairs = [p for p in pairs if ((rows["source"] == p[0]) & (rows["target"] == p[1])).any()]
    if not pairs:
        return False
    plt, fig, axes = _grid(len(pairs))
    for ax, (source, target) in zip(axes, pairs, strict=True):
        sub = rows[(rows["source"] == source) & (rows["target"] == target)].sort_values(category)
        _dots(ax, sub, category, labels, STANCE_COLORS, horizontal)
        ax.set_title(f"{source} → {target}", fontsize=10)
    _save(plt, fig, path, axes[0], INTERVAL_NOTE)
    return True


def plot_framing(table: pd.DataFrame, category: str, labels: list[str], actors: list[str], path: Path) -> bool:
    actors = [a for a in actors if (table["actor"] == a).any()]
    if not actors:
        return False
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    shown = [lab for lab in labels if lab != "none"]  # none is 1 minus the rest; its dot would crowd the others
    colors = {lab: cmap(i % 10) for i, lab in enumerate(shown)}
    plt, fig, axes = _grid(len(actors), width=6.0)
    for ax, actor in zip(axes, actors, strict=True):
        sub = table[table["actor"] == actor].sort_values(category).copy()
        sub["bar"] = sub[category] if category == "voice" else sub[category] + " · " + sub["voice"]
        _dots(ax, sub, "bar", shown, colors, horizontal=True)
        ax.set_title(actor, fontsize=10)
    _save(plt, fig, path, axes[0], INTERVAL_NOTE + "; 'none' is not drawn")
    return True


def plot_outlets_compared(table: pd.DataFrame, labels: list[str], pairs: list[tuple[str, str]], path: Path) -> bool:
    """For each pair: its support and oppose shares per period, one series per outlet, side by side."""
    rows = table[(table["period"] != UNDATED)]
    pairs = [p for p in pairs if ((rows["source"] == p[0]) & (rows["target"] == p[1])).any()][:3]
    if not pairs:
        return False
    shown = [lab for lab in labels if lab != "neutral"] or labels
    plt = _plt()
    fig, axes = plt.subplots(len(pairs), len(shown), figsize=(6.5 * len(shown), 3.4 * len(pairs)), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for r, (source, target) in enumerate(pairs):
        sub = rows[(rows["source"] == source) & (rows["target"] == target)]
        periods = sorted(sub["period"].unique())
        outlets = list(sub.groupby("outlet")["n"].sum().sort_values(ascending=False).index[:6])
        width = 0.8 / max(len(outlets), 1)
        for c, lab in enumerate(shown):
            ax = axes[r][c]
            for i, outlet in enumerate(outlets):
                cell = sub[sub["outlet"] == outlet].set_index("period").reindex(periods)
                have = cell["n"].notna().to_numpy()
                if not have.any():
                    continue
                pos = np.arange(len(periods))[have] + (i - (len(outlets) - 1) / 2) * width
                share = cell[f"share_{lab}"].to_numpy(dtype=float)[have]
                err = np.vstack([share - cell[f"low_{lab}"].to_numpy(dtype=float)[have],
                                 cell[f"high_{lab}"].to_numpy(dtype=float)[have] - share]).clip(min=0)
                small = (cell["note"].fillna("") != "").to_numpy()[have]
                color = cmap(i % 10)
                ax.errorbar(pos[~small], share[~small], yerr=err[:, ~small], fmt="o", ms=4, capsize=2, color=color,
                            label=outlet if r == 0 and c == 0 else None)
                if small.any():
                    ax.errorbar(pos[small], share[small], yerr=err[:, small], fmt="o", ms=4, capsize=2, color=GREY)
            ax.set_xticks(range(len(periods)), periods, rotation=45, ha="right", fontsize=7)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.set_title(f"{source} → {target}: share {lab}", fontsize=10)
    _save(plt, fig, path, axes[0][0], INTERVAL_NOTE)
    return True


# -- html ---------------------------------------------------------------------------------------


def _records(frame: pd.DataFrame) -> list[list]:
    return frame.astype(object).where(frame.notna(), None).values.tolist()


def _html_table(frame: pd.DataFrame, link: str | None = None) -> str:
    return _html_rows(list(frame.columns), _records(frame), link)


def _html_rows(columns: list[str], rows: list[list], link: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    kinds = ["group" if col == "group" and link else "url" if col == "url" else "" for col in columns]
    body = []
    for row in rows:
        cells = []
        for kind, value in zip(kinds, row, strict=True):
            text = html.escape("" if value is None else str(value))
            if kind == "group":
                cells.append(f'<td id="{text}"><a href="{link}#{text}">sentences</a></td>')
            elif kind == "url" and text.startswith(("http://", "https://")):
                cells.append(f'<td><a href="{text}">{text}</a></td>')
            else:
                cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


STYLE = """<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;
vertical-align:top}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}</style>"""


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def _evidence_page(title: str, groups: dict[str, list[list]], columns: list[str], totals: dict[str, int],
                   back: str) -> str:
    sections = []
    for group in sorted(groups, key=_natural):
        rows = groups[group]
        more = totals.get(group, 0) - len(rows)
        note = f"<p>{more} more in the CSV.</p>" if more > 0 else ""
        anchor = html.escape(group)
        sections.append(f'<h3 id="{anchor}">{anchor} (<a href="{back}#{anchor}">back</a>)</h3>'
                        f"{_html_rows(columns, rows)}{note}")
    return _page(title, "".join(sections) or "<p>No sentences.</p>")


def _natural(group: str) -> int:
    return int(group[1:])


# -- the report ---------------------------------------------------------------------------------


PAIR_EVIDENCE = ["stance", "row_id", "doc_id", "outlet", "published", "url", "sentence_index", "sentence_text"]
MENTION_EVIDENCE = ["framing", "mention_text", "term_text", "speaker", "negated", "row_id", "doc_id", "outlet",
                    "published", "url", "sentence_index", "sentence_text"]
PAIR_COLUMNS = ["source", "target", "stance", "outlet", "published", "doc_hash"]
MENTION_COLUMNS = ["actor", "voice", "framing", "outlet", "published", "doc_hash"]


def _labels(scan: ResultsScan, label_col: str, fallback: list[str]) -> list[str]:
    probs = [c[len("prob_"):] for c in scan.schema.names if c.startswith("prob_")]
    if probs:
        return probs
    seen: set[str] = set()
    for batch in scan.batches([label_col]):
        seen.update(v for v in pc.unique(batch.column(label_col)).to_pylist() if v is not None)
    return [lab for lab in fallback if lab in seen] + sorted(seen - set(fallback))


def report_figures(pairs: ResultsScan, mentions: ResultsScan, period: str,
                   top_pairs: list, top_actors: list) -> list[Figure]:
    stance = _labels(pairs, "stance", list(STANCE_COLORS))
    framing = _labels(mentions, "framing", [])
    return [
        Figure("stance_over_time", f"Stance share per ordered pair per {period}", "pairs",
               ["source", "target", "period"], "stance", stance, PAIR_EVIDENCE,
               lambda t, p: plot_stance(t, "period", stance, top_pairs, p, horizontal=False)),
        Figure("stance_by_outlet", "Stance share per ordered pair per outlet", "pairs",
               ["source", "target", "outlet"], "stance", stance, PAIR_EVIDENCE,
               lambda t, p: plot_stance(t, "outlet", stance, top_pairs, p, horizontal=True)),
        Figure("stance_outlets_compared", f"One pair's stance share across outlets, per {period}", "pairs",
               ["source", "target", "period", "outlet"], "stance", stance, PAIR_EVIDENCE,
               lambda t, p: plot_outlets_compared(t, stance, top_pairs, p)),
        Figure("framing_by_actor", "Framing category share per actor, author's voice vs quoted", "mentions",
               ["actor", "voice"], "framing", framing, MENTION_EVIDENCE,
               lambda t, p: plot_framing(t, "voice", framing, top_actors, p)),
        Figure("framing_by_outlet", "Framing category share per actor and outlet, by voice", "mentions",
               ["actor", "outlet", "voice"], "framing", framing, MENTION_EVIDENCE,
               lambda t, p: plot_framing(t, "outlet", framing, top_actors, p)),
    ]


@dataclass
class Coverage:
    """What the report covers, gathered while scanning."""

    documents: set = field(default_factory=set)
    pair_rows: int = 0
    mention_rows: int = 0
    outlets: set = field(default_factory=set)
    first: str | None = None
    last: str | None = None
    models: set = field(default_factory=set)
    group_sizes: dict = field(default_factory=dict)

    def add(self, table: pa.Table, kind: str, key: list[str]) -> None:
        if kind == "pairs":
            self.pair_rows += table.num_rows
        else:
            self.mention_rows += table.num_rows
        self.documents.update(pc.unique(table.column("doc_hash")).to_pylist())
        self.outlets.update(pc.unique(table.column("outlet")).to_pylist())
        dates = pc.drop_null(pc.utf8_slice_codeunits(table.column("published"), 0, 10))
        dates = dates.filter(pc.match_substring_regex(dates, r"^\d{4}-\d{2}-\d{2}$"))
        if len(dates):
            lo, hi = pc.min(dates).as_py(), pc.max(dates).as_py()
            self.first = min(filter(None, [self.first, lo]))
            self.last = max(filter(None, [self.last, hi]))
        for m in table.select(["model_name", "model_version", "model_hash"]).group_by(
                ["model_name", "model_version", "model_hash"]).aggregate([]).to_pylist():
            self.models.add(f"{m['model_name']} {m['model_version']} ({m['model_hash'] or 'no hash'})")
        counts = table.select(key).group_by(key).aggregate([([], "count_all")]).to_pylist()
        sizes = self.group_sizes.setdefault(kind, {})
        for row in counts:
            k = tuple(row[c] for c in key)
            sizes[k] = sizes.get(k, 0) + row["count_all"]

    def largest(self, kind: str, top: int) -> list:
        sizes = self.group_sizes.get(kind, {})
        ranked = sorted(sizes.items(), key=lambda kv: -kv[1])[:top]  # stable: ties keep first-seen order
        return [k if len(k) > 1 else k[0] for k, _ in ranked]


def scan(pairs: ResultsScan, mentions: ResultsScan, figures: list[Figure], period: str,
         coverage: Coverage | None = None) -> None:
    """One pass over each table: per-document counts of every figure (and the coverage)."""
    for kind, source, columns, key in (("pairs", pairs, PAIR_COLUMNS, ["source", "target"]),
                                       ("mentions", mentions, MENTION_COLUMNS, ["actor"])):
        extra = ["model_name", "model_version", "model_hash"] if coverage is not None else []
        for batch in source.batches([*columns, *extra]):
            batch = with_derived(batch, period)
            if coverage is not None:
                coverage.add(batch, kind, key)
            documents = document_ids(batch.column("doc_hash"))
            for figure in figures:
                if figure.rows == kind:
                    count_rows(batch, figure, documents)


def write_evidence(source: ResultsScan, figures: list[Figure], tables: dict[str, pd.DataFrame], out: Path,
                   period: str) -> dict[str, tuple[dict, dict]]:
    """The sentences behind each group, streamed: the CSVs get every row, the pages the first
    EVIDENCE_PER_GROUP_HTML of each group."""
    if not figures:
        return {}
    columns = sorted({c for f in figures for c in [*f.keys, *f.evidence_columns]} - {"period"})
    columns = [*[c for c in columns if c != "published"], "published"]
    kept: dict[str, tuple[dict, dict]] = {f.name: ({}, {}) for f in figures}
    first = True
    for batch in source.batches([c for c in columns if c != "period"]):
        frame = with_derived(batch, period).to_pandas()
        for figure in figures:
            groups = tables[figure.name]
            cols = ["group", *figure.keys, *[c for c in figure.evidence_columns if c not in figure.keys]]
            merged = frame.merge(groups[["group", *figure.keys]], on=figure.keys, how="inner")[cols]
            merged.to_csv(out / f"evidence_{figure.name}.csv", mode="w" if first else "a", header=first, index=False)
            shown, totals = kept[figure.name]
            for group, sub in merged.groupby("group", sort=False):
                totals[group] = totals.get(group, 0) + len(sub)
                room = EVIDENCE_PER_GROUP_HTML - len(shown.get(group, []))
                if room > 0:
                    shown.setdefault(group, []).extend(_records(sub.drop(columns=["group"]).head(room)))
        first = False
    if first:  # no rows at all: empty tables with their headers
        for figure in figures:
            pd.DataFrame(columns=["group", *figure.keys, *figure.evidence_columns]).to_csv(
                out / f"evidence_{figure.name}.csv", index=False)
    return kept


def write_figure(figure: Figure, table: pd.DataFrame, evidence: tuple[dict, dict], out: Path) -> str:
    """The figure's table, pages and PNG in `out` (its evidence CSV is already there); returns its
    section of index.html."""
    name, title = figure.name, figure.title
    table.to_csv(out / f"{name}.csv", index=False)
    shown_cols = ["group", *figure.keys, "n", "documents",
                  *[c for lab in figure.labels for c in (f"share_{lab}", f"low_{lab}", f"high_{lab}")], "note"]
    (out / f"{name}.html").write_text(
        _page(title, _html_table(table[[c for c in shown_cols if c in table.columns]],
                                 link=f"evidence_{name}.html")), encoding="utf-8")
    columns = [c for c in [*figure.keys, *figure.evidence_columns] if c not in ("group",)]
    columns = list(dict.fromkeys(columns))
    (out / f"evidence_{name}.html").write_text(
        _evidence_page(f"Sentences behind: {title}", evidence[0], columns, evidence[1], f"{name}.html"),
        encoding="utf-8")
    png = out / f"{name}.png"
    png.unlink(missing_ok=True)
    drawn = figure.plot(table, png) if len(table) else False
    shown = (
        f'<p><a href="{name}.png"><img src="{name}.png" alt="{html.escape(title)}"></a></p>'
        if drawn
        else "<p><em>Nothing to plot: no rows" + (" with a published date" if "period" in figure.keys else "")
        + ".</em></p>"
    )
    return (
        f"<h2>{html.escape(title)}</h2>{shown}<p>{html.escape(INTERVAL_NOTE)}. Tables: <a href='{name}.html'>"
        f"{name}.html</a> · <a href='{name}.csv'>{name}.csv</a> (n, documents, share, Wilson and "
        f"document-bootstrap intervals per label) · sentences behind it: <a href='evidence_{name}.html'>"
        f"evidence_{name}.html</a> · <a href='evidence_{name}.csv'>evidence_{name}.csv</a></p>"
    )


def summary_table(results: Path, coverage: Coverage, top: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("results", str(results)),
            ("documents with actors", len(coverage.documents)),
            ("pair rows (document, sentence, ordered pair)", coverage.pair_rows),
            ("mention rows", coverage.mention_rows),
            ("outlets", len(coverage.outlets)),
            ("dates", f"{coverage.first} … {coverage.last}" if coverage.first else "none given"),
            ("model", "; ".join(sorted(coverage.models)) or "-"),
            ("plotted", f"the {top} pairs and actors with most rows (all of them are in the tables)"),
            ("uncertainty", INTERVAL_NOTE),
        ],
        columns=["", "value"],
    )


def build_report(results: Path, out: Path, period: str = "month", top: int = 6) -> Path:
    """Write the tables, plots and index.html into `out`; returns the index.html path."""
    if period not in ("week", "month"):
        raise ReportError(f"--period: expected week or month, found {period!r}")
    pairs, mentions = open_results(results)
    out.mkdir(parents=True, exist_ok=True)
    coverage = Coverage()
    # The plots need the top pairs and actors, counted in the same pass: filled in once it is done.
    top_pairs: list = []
    top_actors: list = []
    figures = report_figures(pairs, mentions, period, top_pairs, top_actors)
    scan(pairs, mentions, figures, period, coverage)
    top_pairs.extend(coverage.largest("pairs", top))
    top_actors.extend(coverage.largest("mentions", top))
    tables = {f.name: share_table(f) for f in figures}
    evidence = {
        **write_evidence(pairs, [f for f in figures if f.rows == "pairs"], tables, out, period),
        **write_evidence(mentions, [f for f in figures if f.rows == "mentions"], tables, out, period),
    }
    sections = [write_figure(f, tables[f.name], evidence.get(f.name, ({}, {})), out) for f in figures]
    index = out / "index.html"
    index.write_text(
        _page(f"stancelens report: {results.name}", _html_table(summary_table(results, coverage, top))
              + "".join(sections)),
        encoding="utf-8",
    )
    return index
