"""Report on scored results: the aggregates and plots a researcher would otherwise make by hand.

`build_report(RESULTS, DIR)` reads the pair rows and the mention rows beside them (written by
`stancelens score`) and writes into DIR:

- ``stance_over_time.{csv,html,png}``  stance share per ordered pair per week or month
- ``stance_by_outlet.{csv,html,png}``  stance share per ordered pair per outlet
- ``framing_by_actor.{csv,html,png}``  framing category share per actor, author's voice vs quoted
- ``framing_by_outlet.{csv,html,png}`` the same per actor and outlet
- ``evidence_<figure>.{csv,html}``     the sentences behind each figure: every row of an aggregate
  has a ``group`` key; the evidence tables list the sentences (text, row id, document, url) of each
  group, and the aggregate HTML links each group to them
- ``index.html``                        the summary that links all of it; open it in a browser
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stancelens.batch.tables import infer_format, mentions_path, read_table

UNKNOWN_OUTLET = "(unknown outlet)"
UNDATED = "(undated)"
EVIDENCE_PER_GROUP_HTML = 50  # the CSV has them all; the page stays small enough to open
STANCE_COLORS = {"support": "#2e7d32", "oppose": "#c62828", "neutral": "#9e9e9e"}


class ReportError(ValueError):
    pass


def load_results(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pair rows and the mention rows of a `stancelens score` run."""
    mentions = mentions_path(results)
    for path in (results, mentions):
        if not path.exists():
            raise ReportError(
                f"{path}: expected the results of `stancelens score --out {results}`, found no such file; "
                "run the scoring first (its mention rows sit beside it as "
                f"{mentions.name})"
            )
    fmt = infer_format(results, None)
    try:
        pairs = read_table(results, fmt).to_pandas()
        ments = read_table(mentions, fmt).to_pandas()
    except Exception as exc:
        raise ReportError(f"{results}: expected a {fmt} results table, found one that cannot be read ({exc})") from exc
    for name, frame, needed in (
        ("pair", pairs, {"source", "target", "stance", "row_id", "sentence_text"}),
        ("mention", ments, {"actor", "framing", "voice", "row_id", "sentence_text"}),
    ):
        missing = needed - set(frame.columns)
        if len(frame) and missing:
            raise ReportError(
                f"{results}: expected {name} rows with columns {sorted(needed)}, found "
                f"{sorted(missing)} missing; was it written by `stancelens score`?"
            )
    return _prepare(pairs), _prepare(ments)


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    if frame.empty:
        for col in ("outlet", "published", "source", "target", "stance", "actor", "framing", "voice"):
            if col not in frame.columns:
                frame[col] = pd.Series(dtype="object")
    frame["outlet"] = frame["outlet"].fillna(UNKNOWN_OUTLET).replace("", UNKNOWN_OUTLET)
    frame["when"] = pd.to_datetime(frame["published"], utc=True, errors="coerce", format="ISO8601")
    return frame


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


def _shares(frame: pd.DataFrame, keys: list[str], label_col: str, labels: list[str], prefix: str) -> pd.DataFrame:
    """Rows per group with n and the share of each label; `group` names the group for the evidence."""
    if frame.empty:
        return pd.DataFrame(columns=["group", *keys, "n", *[f"{prefix}{lab}" for lab in labels]])
    counts = frame.groupby([*keys, label_col]).size().unstack(label_col, fill_value=0)
    counts = counts.reindex(columns=labels, fill_value=0)
    n = counts.sum(axis=1)
    table = counts.div(n, axis=0).round(4).add_prefix(prefix)
    table.insert(0, "n", n)
    table = table.reset_index()
    table.insert(0, "group", [f"g{i}" for i in range(len(table))])
    return table


def _evidence(frame: pd.DataFrame, table: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """The rows behind each group of `table`, with the group key to find them."""
    if frame.empty or table.empty:
        return pd.DataFrame(columns=["group", *keys, *columns])
    merged = frame.merge(table[["group", *keys]], on=keys, how="inner")
    cols = ["group", *keys, *[c for c in columns if c not in keys]]
    return merged[cols].sort_values(["group", "row_id"], key=lambda s: s.map(_natural) if s.name == "group" else s)


def _natural(group: str) -> int:
    return int(group[1:])


# -- plots --------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt

    return plt


def _grid(count: int):
    plt = _plt()
    cols = min(3, count)
    rows = (count + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return plt, fig, list(axes.flat[:count])


def _stacked(
    ax, frame: pd.DataFrame, category: str, share_cols: list[str], colors: dict[str, str], horizontal: bool
) -> None:
    left = pd.Series(0.0, index=range(len(frame)))
    positions = range(len(frame))
    for col in share_cols:
        values = frame[col].reset_index(drop=True)
        label = col.split("_", 1)[1]
        if horizontal:
            ax.barh(positions, values, left=left, color=colors.get(label), label=label)
        else:
            ax.bar(positions, values, bottom=left, color=colors.get(label), label=label)
        left = left + values
    ticks = [f"{c} (n={n})" for c, n in zip(frame[category], frame["n"], strict=True)]
    if horizontal:
        ax.set_yticks(list(positions), ticks, fontsize=7)
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
    else:
        ax.set_xticks(list(positions), ticks, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0, 1)


def _save(plt, fig, path: Path, handles_from) -> None:
    handles, labels = handles_from.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(8, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_stance(
    table: pd.DataFrame,
    category: str,
    labels: list[str],
    pairs: list[tuple[str, str]],
    path: Path,
    horizontal: bool,
) -> bool:
    rows = table[table[category] != UNDATED] if category == "period" else table
    pairs = [p for p in pairs if ((rows["source"] == p[0]) & (rows["target"] == p[1])).any()]
    if not pairs:
        return False
    plt, fig, axes = _grid(len(pairs))
    share_cols = [f"share_{lab}" for lab in labels]
    for ax, (source, target) in zip(axes, pairs, strict=True):
        sub = rows[(rows["source"] == source) & (rows["target"] == target)].sort_values(category)
        _stacked(ax, sub, category, share_cols, STANCE_COLORS, horizontal)
        ax.set_title(f"{source} → {target}", fontsize=10)
    _save(plt, fig, path, axes[0])
    return True


def plot_framing(table: pd.DataFrame, category: str, labels: list[str], actors: list[str], path: Path) -> bool:
    actors = [a for a in actors if (table["actor"] == a).any()]
    if not actors:
        return False
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    colors = {lab: ("#dddddd" if lab == "none" else cmap(i % 10)) for i, lab in enumerate(labels)}
    plt, fig, axes = _grid(len(actors))
    share_cols = [f"share_{lab}" for lab in labels]
    for ax, actor in zip(axes, actors, strict=True):
        sub = table[table["actor"] == actor].sort_values(category).copy()
        sub["bar"] = sub[category] if category == "voice" else sub[category] + " · " + sub["voice"]
        _stacked(ax, sub, "bar", share_cols, colors, horizontal=True)
        ax.set_title(actor, fontsize=10)
    _save(plt, fig, path, axes[0])
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


def _evidence_page(title: str, evidence: pd.DataFrame, back: str) -> str:
    columns = [c for c in evidence.columns if c != "group"]
    groups: dict[str, list[list]] = {}
    for group, *row in _records(evidence[["group", *columns]]):
        groups.setdefault(str(group), []).append(row)
    sections = []
    for group, rows in groups.items():
        more = len(rows) - EVIDENCE_PER_GROUP_HTML
        note = f"<p>{more} more in the CSV.</p>" if more > 0 else ""
        anchor = html.escape(group)
        sections.append(
            f'<h3 id="{anchor}">{anchor} (<a href="{back}#{anchor}">back</a>)</h3>'
            f"{_html_rows(columns, rows[:EVIDENCE_PER_GROUP_HTML])}{note}"
        )
    return _page(title, "".join(sections) or "<p>No sentences.</p>")


# -- the report ---------------------------------------------------------------------------------


PAIR_EVIDENCE = ["stance", "row_id", "doc_id", "outlet", "published", "url", "sentence_index", "sentence_text"]
MENTION_EVIDENCE = ["framing", "mention_text", "term_text", "speaker", "negated", "row_id", "doc_id", "outlet",
                    "published", "url", "sentence_index", "sentence_text"]


@dataclass
class Figure:
    """One figure of the report: its rows, grouping keys and label column, and how to plot its table."""

    name: str
    title: str
    frame: pd.DataFrame
    keys: list[str]
    label_col: str
    labels: list[str]
    evidence_columns: list[str]
    plot: Callable[[pd.DataFrame, Path], bool]


def _largest(frame: pd.DataFrame, keys: list[str], top: int) -> list:
    """The `top` groups with most rows (ties in first-seen order)."""
    if not len(frame):
        return []
    index = frame.groupby(keys).size().sort_values(ascending=False, kind="stable").head(top).index
    return [tuple(k) for k in index] if len(keys) > 1 else list(index)


def report_figures(pairs: pd.DataFrame, mentions: pd.DataFrame, period: str, top: int) -> list[Figure]:
    stance_labels = [c[len("prob_") :] for c in pairs.columns if c.startswith("prob_")] or list(STANCE_COLORS)
    framing_labels = [c[len("prob_") :] for c in mentions.columns if c.startswith("prob_")]
    framing_labels = framing_labels or sorted(mentions["framing"].dropna().unique())
    top_pairs = _largest(pairs, ["source", "target"], top)
    top_actors = _largest(mentions, ["actor"], top)
    return [
        Figure("stance_over_time", f"Stance share per ordered pair per {period}", pairs,
               ["source", "target", "period"], "stance", stance_labels, PAIR_EVIDENCE,
               lambda t, p: plot_stance(t, "period", stance_labels, top_pairs, p, horizontal=False)),
        Figure("stance_by_outlet", "Stance share per ordered pair per outlet", pairs,
               ["source", "target", "outlet"], "stance", stance_labels, PAIR_EVIDENCE,
               lambda t, p: plot_stance(t, "outlet", stance_labels, top_pairs, p, horizontal=True)),
        Figure("framing_by_actor", "Framing category share per actor, author's voice vs quoted", mentions,
               ["actor", "voice"], "framing", framing_labels, MENTION_EVIDENCE,
               lambda t, p: plot_framing(t, "voice", framing_labels, top_actors, p)),
        Figure("framing_by_outlet", "Framing category share per actor and outlet, by voice", mentions,
               ["actor", "outlet", "voice"], "framing", framing_labels, MENTION_EVIDENCE,
               lambda t, p: plot_framing(t, "outlet", framing_labels, top_actors, p)),
    ]


def write_figure(figure: Figure, out: Path) -> str:
    """The figure's table, evidence, pages and PNG in `out`; returns its section of index.html."""
    name, title = figure.name, figure.title
    table = _shares(figure.frame, figure.keys, figure.label_col, figure.labels, "share_")
    evidence = _evidence(figure.frame, table, figure.keys, figure.evidence_columns)
    table.to_csv(out / f"{name}.csv", index=False)
    evidence.to_csv(out / f"evidence_{name}.csv", index=False)
    (out / f"{name}.html").write_text(_page(title, _html_table(table, link=f"evidence_{name}.html")), encoding="utf-8")
    (out / f"evidence_{name}.html").write_text(
        _evidence_page(f"Sentences behind: {title}", evidence, f"{name}.html"), encoding="utf-8"
    )
    png = out / f"{name}.png"
    png.unlink(missing_ok=True)
    drawn = figure.plot(table, png)
    shown = (
        f'<p><a href="{name}.png"><img src="{name}.png" alt="{html.escape(title)}"></a></p>'
        if drawn
        else "<p><em>Nothing to plot: no rows" + (" with a published date" if "period" in figure.keys else "")
        + ".</em></p>"
    )
    return (
        f"<h2>{html.escape(title)}</h2>{shown}<p>Tables: <a href='{name}.html'>{name}.html</a> · "
        f"<a href='{name}.csv'>{name}.csv</a> · sentences behind it: <a href='evidence_{name}.html'>"
        f"evidence_{name}.html</a> · <a href='evidence_{name}.csv'>evidence_{name}.csv</a></p>"
    )


def summary_table(results: Path, pairs: pd.DataFrame, mentions: pd.DataFrame, top: int) -> pd.DataFrame:
    """What the report covers: documents, rows, outlets, dates and the models that scored them."""
    docs = pd.concat([pairs.get("doc_hash", pd.Series(dtype=str)), mentions.get("doc_hash", pd.Series(dtype=str))])
    dated = pd.concat([pairs["when"], mentions["when"]]).dropna()
    models = (
        sorted(
            {
                f"{r.model_name} {r.model_version} ({r.model_hash or 'no hash'})"
                for r in pd.concat([pairs, mentions])
                .drop_duplicates(["model_name", "model_version", "model_hash"])
                .itertuples()
            }
        )
        if len(docs)
        else []
    )
    return pd.DataFrame(
        [
            ("results", str(results)),
            ("documents with actors", docs.nunique()),
            ("pair rows (document, sentence, ordered pair)", len(pairs)),
            ("mention rows", len(mentions)),
            ("outlets", pd.concat([pairs["outlet"], mentions["outlet"]]).nunique()),
            ("dates", f"{dated.min():%Y-%m-%d} … {dated.max():%Y-%m-%d}" if len(dated) else "none given"),
            ("model", "; ".join(models) or "-"),
            ("plotted", f"the {top} pairs and actors with most rows (all of them are in the tables)"),
        ],
        columns=["", "value"],
    )


def build_report(results: Path, out: Path, period: str = "month", top: int = 6) -> Path:
    """Write the tables, plots and index.html into `out`; returns the index.html path."""
    if period not in ("week", "month"):
        raise ReportError(f"--period: expected week or month, found {period!r}")
    pairs, mentions = load_results(results)
    out.mkdir(parents=True, exist_ok=True)
    pairs["period"] = period_of(pairs["when"], period)
    mentions["period"] = period_of(mentions["when"], period)
    sections = [write_figure(f, out) for f in report_figures(pairs, mentions, period, top)]
    index = out / "index.html"
    index.write_text(
        _page(f"stancelens report: {results.name}",
              _html_table(summary_table(results, pairs, mentions, top)) + "".join(sections)),
        encoding="utf-8",
    )
    return index
