"""Data rows (training/data.py) as the engine's items: the pairs and mentions of a row, with their labels,
in the form prediction uses, so that validation and evaluation go through the same code path."""

from __future__ import annotations

from collections.abc import Sequence

from stancelens.model.pipeline import MentionItem, PairItem
from stancelens.model.transformer import FOREIGN_CONVENTIONS


def row_convention(row: dict, conventions: Sequence[str] = FOREIGN_CONVENTIONS) -> str:
    """The stance convention of a data row: its origin when that has a readout of its own."""
    return row.get("origin", "news") if row.get("origin") in conventions else "news"



def rows_to_items(rows: list[dict]) -> tuple[list[PairItem], list[int], list[dict], list[MentionItem], list[int]]:
    pair_items, pair_y, pair_rows, mention_items, mention_y = [], [], [], [], []
    for r in rows:
        convention = row_convention(r)
        spans = tuple(tuple(s) for s in r["spans"])
        all_spans = tuple(sorted(spans))
        for k, (src, tgt, y) in enumerate(zip(r["pair_src"], r["pair_tgt"], r["pair_label"])):
            pair_items.append(PairItem(
                r["text"], tuple(spans[i] for i in src), tuple(spans[j] for j in tgt), f"a{src[0]}", f"a{tgt[0]}",
                all_spans, convention,
            ))
            pair_y.append(y)
            pair_rows.append({"row": r, "k": k})
        for k, y in enumerate(r["framing"]):
            if y >= 0:
                mention_items.append(MentionItem(r["text"], spans[k], f"a{k}", "name", all_spans))
                mention_y.append(y)
    return pair_items, pair_y, pair_rows, mention_items, mention_y
