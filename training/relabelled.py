"""DSE lines relabelled under this project's codebook (deeds count), as training and evaluation rows.

The project stores only references and labels (labels/relabelled/dse.jsonl: file, line number, sha256 of
the line, p→q and q→p stance or a skip reason, split); the sentences are read from the DSE folder
(`$STANCELENS_DATA/dse`) and each line is checked against its hash, so a different copy of DSE is refused
rather than silently mislabelled. DSE valid is split by a hash of the line into `dev` (choices: epochs,
recipes, calibration) and `test` (reported only); train lines whose sentence also occurs in DSE valid are
left out of training, so no test sentence is ever trained on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from stancelens.model.labelset import LabelStandard, labels_dir
from stancelens.training import data as D

SPLITS = ("train", "dev", "test")
ORIGIN = "relabelled"


def references_path() -> Path:
    return labels_dir() / "relabelled" / "dse.jsonl"


class RelabelledError(ValueError):
    """The references do not fit the DSE files at hand."""


@dataclass(frozen=True)
class Reference:
    file: str
    line: int
    sha256: str
    p_to_q: str | None
    q_to_p: str | None
    skip: str | None
    split: str


def read_references(path: Path | None = None) -> list[Reference]:
    """The relabelled lines, checked field by field (file/line named on error)."""
    path = path or references_path()
    out = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        record = json.loads(raw)
        split = record.get("split")
        if split not in SPLITS:
            raise RelabelledError(f"{path}, line {number}, split: expected one of {list(SPLITS)}, found {split!r}")
        out.append(Reference(record["file"], int(record["line"]), record["sha256"], record.get("p_to_q"),
                             record.get("q_to_p"), record.get("skip"), split))
    return out


def dev_or_test(line_text: str) -> str:
    """DSE valid's split: a hash of the raw line, so the same line always lands on the same side."""
    return "dev" if int(hashlib.sha256(line_text.encode("utf-8")).hexdigest()[:8], 16) % 2 == 0 else "test"


def _sentence(line_text: str) -> str:
    return re.sub(r"[\[\]]", "", line_text.split("\t")[0])


def _lines(dse_dir: Path, name: str) -> list[str]:
    path = dse_dir / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: expected DSE's {name} (set STANCELENS_DATA to the folder holding dse/)")
    with path.open(encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def relabelled_rows(dse_dir: Path, split: str, standard: LabelStandard,
                    references: list[Reference] | None = None) -> list[dict]:
    """Rows (training/data.py's shape, origin "relabelled", news readout) of one split, skips left out."""
    if split not in SPLITS:
        raise RelabelledError(f"split: expected one of {list(SPLITS)}, found {split!r}")
    references = references if references is not None else read_references()
    files: dict[str, list[str]] = {}
    stance_id = {label: i for i, label in enumerate(standard.stance)}
    held_out: set[str] = set()
    if split == "train":
        # A sentence of DSE valid (dev or test) is never trained on, whatever its line in train.
        held_out = {_sentence(line) for line in _lines(dse_dir, "valid.txt")}
    rows = []
    for ref in references:
        if ref.split != split or ref.skip is not None:
            continue
        lines = files.setdefault(ref.file, _lines(dse_dir, ref.file))
        if not 1 <= ref.line <= len(lines):
            raise RelabelledError(f"{dse_dir / ref.file}: expected a line {ref.line}, found {len(lines)} lines; "
                                  "use the DSE release the references were made from")
        text = lines[ref.line - 1]
        found = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if found != ref.sha256:
            raise RelabelledError(f"{dse_dir / ref.file}, line {ref.line}: expected sha256 {ref.sha256[:12]}…, "
                                  f"found {found[:12]}…; use the DSE release the references were made from")
        if split == "train" and _sentence(text) in held_out:
            continue
        parsed = D.parse_dse_line(text)
        if parsed is None or ref.p_to_q not in stance_id or ref.q_to_p not in stance_id:
            continue
        sentence, sp, sq, _ = parsed
        row = D.pair_row(sentence, sp, sq, stance_id[ref.p_to_q], stance_id[ref.q_to_p], -1, ORIGIN,
                         f"{ref.file}:{ref.line}")
        if row is not None:
            rows.append(row)
    return rows


def read_labels(path: Path) -> dict[tuple[str, int], tuple[str, str]]:
    """(file, line) → (p→q, q→p), with 'skip' for skipped lines: one annotation pass."""
    out = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(raw)
        labels = ("skip", "skip") if record.get("skip") else (record["p_to_q"], record["q_to_p"])
        out[(record["file"], int(record["line"]))] = labels
    return out


def pass_agreement(first: dict[tuple[str, int], tuple[str, str]],
                   second: dict[tuple[str, int], tuple[str, str]]) -> dict:
    """Krippendorff's α (nominal) of two passes over the lines both labelled: stance over the directed
    pairs of lines neither pass skipped, per label (one label against the rest), and with skip as a label."""
    import krippendorff
    import numpy as np

    common = sorted(set(first) & set(second))
    codes = {"support": 0, "oppose": 1, "neutral": 2, "skip": 3}
    a, b, a_all, b_all = [], [], [], []
    for key in common:
        for k in (0, 1):
            a_all.append(codes[first[key][k]])
            b_all.append(codes[second[key][k]])
            if "skip" not in (first[key][0], second[key][0]):
                a.append(codes[first[key][k]])
                b.append(codes[second[key][k]])

    def alpha(x: list[int], y: list[int]) -> float:
        return float(krippendorff.alpha(reliability_data=np.array([x, y], dtype=float),
                                        level_of_measurement="nominal"))

    return {
        "lines": len(common),
        "pairs": len(a),
        "stance_alpha": alpha(a, b),
        "alpha_with_skip": alpha(a_all, b_all),
        "per_label_alpha": {label: alpha([int(v == codes[label]) for v in a], [int(v == codes[label]) for v in b])
                            for label in ("support", "oppose", "neutral")},
        "skip_disagreements": sum(1 for key in common if (first[key][0] == "skip") != (second[key][0] == "skip")),
    }
