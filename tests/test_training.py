"""A real (tiny) fine-tune: the loop learns, the directory round-trips, errors are clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stancelens.model.predictor import DocumentInput
from stancelens.training.config import TrainingConfig
from tests.conftest import MINI_CORPUS, SEEDS, assert_batch_equals_single


def test_model_directory_has_everything_beside_the_weights(tiny_model: Path):
    names = {p.name for p in tiny_model.iterdir()}
    assert {"config.json", "model.safetensors", "heads.safetensors", "tokenizer.json", "stancelens.json",
            "training_config.yaml", "data_hashes.json", "metrics.json", "labels"} <= names
    meta = json.loads((tiny_model / "stancelens.json").read_text())
    assert meta["stance_id2label"] == {"0": "support", "1": "oppose", "2": "neutral"}
    assert meta["framing_id2label"]["0"] == "terrorist"
    assert (tiny_model / "labels" / "actors.yaml").exists()
    hashes = json.loads((tiny_model / "data_hashes.json").read_text())
    assert any(k.endswith("mini_corpus.jsonl") for k in hashes)
    metrics = json.loads((tiny_model / "metrics.json").read_text())
    assert metrics["model"]["hash"] == meta["hash"]
    assert "calibration" in metrics


def test_loss_falls_on_a_real_fine_tune(tmp_path):
    from stancelens.training.trainer import train

    config = TrainingConfig(authored_path=str(MINI_CORPUS), dse_path=None, seesaw_path=None, epochs=3,
                            batch_size=16, max_length=64, authored_valid_fraction=0.2, patience=5, learning_rate=1e-4)
    metrics = train(config, tmp_path / "m", progress=False, say=lambda m: None)
    losses = [h["mean_loss"] for h in metrics["history"]]
    assert losses[-1] < losses[0] * 0.9, losses


def test_save_then_load_gives_identical_logits(tiny_model, tiny_predictor):
    from stancelens.model.transformer import TransformerEngine

    again = TransformerEngine.load(tiny_model)
    docs = [DocumentInput("a", "Moscow hosted a Hamas delegation. Netanyahu called Hamas terrorists.")]
    from stancelens.model.pipeline import prepare_document

    sentences = prepare_document(docs[0].text, tiny_predictor.registry)
    pairs = [s.pair_item(a, b) for s in sentences for a, b in s.ordered_pairs()]
    mentions = [s.mention_item(m) for s in sentences for m in s.mentions]
    a = tiny_predictor.engine.logits(pairs, mentions)
    b = again.logits(pairs, mentions)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_batch_predictions_equal_single_predictions(tiny_predictor):
    assert_batch_equals_single(tiny_predictor, [DocumentInput(p.stem, p.read_text(encoding="utf-8")) for p in SEEDS])


def test_swapping_source_and_target_changes_the_input_to_the_stance_head(tiny_predictor):
    from stancelens.model.pipeline import prepare_document

    s = prepare_document("Iran armed Hezbollah.", tiny_predictor.registry)[0]
    logits, _ = tiny_predictor.engine.logits([s.pair_item("iran", "hezbollah"), s.pair_item("hezbollah", "iran")], [])
    assert not torch.allclose(logits[0], logits[1])


def test_missing_base_model_is_a_clear_error(tmp_path):
    from stancelens.training.trainer import train

    config = TrainingConfig(base_model=str(tmp_path / "nowhere"), authored_path=str(MINI_CORPUS), dse_path=None,
                            seesaw_path=None)
    with pytest.raises(FileNotFoundError, match="expected a Hugging Face model directory with config.json, found no such directory"):
        train(config, tmp_path / "m", progress=False, say=lambda m: None)


def test_wrong_label_names_in_data_fail_with_file_line_and_field(tmp_path):
    from stancelens.training.trainer import train

    bad = tmp_path / "bad.jsonl"
    lines = MINI_CORPUS.read_text(encoding="utf-8").splitlines()
    doc = json.loads(lines[0])
    doc["sentences"][0]["pairs"][0]["stance"] = "friendly"
    bad.write_text("\n".join([lines[1], json.dumps(doc)]) + "\n", encoding="utf-8")
    config = TrainingConfig(authored_path=str(bad), dse_path=None, seesaw_path=None)
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2, sentences\[0\]\.pairs\[0\]\.stance: expected one of \['support', 'oppose', 'neutral'\], found 'friendly'"):
        train(config, tmp_path / "m", progress=False, say=lambda m: None)


def test_empty_training_set_fails_clearly(tmp_path):
    from stancelens.training.trainer import TrainingError, train

    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    config = TrainingConfig(authored_path=str(empty), dse_path=str(tmp_path / "no-dse"), seesaw_path=None)
    with pytest.raises(TrainingError, match="training set is empty"):
        train(config, tmp_path / "m", progress=False, say=lambda m: None)


def test_config_validation_names_field_expected_and_found(tmp_path):
    with pytest.raises(ValueError, match=r"encoding: expected 'sentence' or 'pair', found 'word'"):
        TrainingConfig(encoding="word")
    path = tmp_path / "c.yaml"
    path.write_text("epochz: 3\n")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['epochz'\]"):
        TrainingConfig.from_yaml(path)


@pytest.mark.slow
def test_direction_is_learnable_swapping_source_and_target_changes_the_answer(tmp_path):
    """A corpus where only direction decides the label ("A praised B": A→B support, B→A neutral):
    after a short fine-tune the model must answer differently for the two orders of held-out pairs."""
    from stancelens.model.annotation import DocumentAnnotation, Framing, Mention, Pair, Sentence, write_annotations
    from stancelens.model.loading import load_predictor
    from stancelens.training.trainer import train

    names = [("Russia", "russia"), ("Israel", "israel"), ("Hamas", "hamas"), ("Iran", "iran"), ("Egypt", "egypt"),
             ("Qatar", "qatar"), ("Turkey", "turkey"), ("Syria", "syria"), ("Jordan", "jordan"), ("China", "china")]
    verbs = ["praised", "thanked", "backed", "applauded", "commended", "hailed"]
    docs = []
    for i, (a, aid) in enumerate(names):
        for j, (b, bid) in enumerate(names):
            if i == j or (i + j) % 5 == 0:  # (i + j) % 5 == 0 is held out
                continue
            text = f"{a} {verbs[(i * 3 + j) % len(verbs)]} {b}."
            ma = Mention(id="m0", start=0, end=len(a), text=a, actor=aid, framing=Framing(label="none"))
            start = text.index(b, len(a))
            mb = Mention(id="m1", start=start, end=start + len(b), text=b, actor=bid, framing=Framing(label="none"))
            pairs = [Pair(source=aid, target=bid, stance="support"), Pair(source=bid, target=aid, stance="neutral")]
            docs.append(DocumentAnnotation(doc_id=f"d{i}{j}", text=text, sentences=[
                Sentence(index=0, start=0, end=len(text), text=text, mentions=[ma, mb], pairs=pairs)]))
    corpus = tmp_path / "direction.jsonl"
    write_annotations(docs, corpus)
    config = TrainingConfig(authored_path=str(corpus), dse_path=None, seesaw_path=None, epochs=8, batch_size=8,
                            max_length=32, authored_valid_fraction=0.1, patience=8, learning_rate=2e-4,
                            stance_bias_calibration=False)
    train(config, tmp_path / "m", progress=False, say=lambda m: None)
    predictor = load_predictor(tmp_path / "m")
    held_out = [DocumentInput(f"h{i}{j}", f"{a} praised {b}.") for i, (a, _) in enumerate(names)
                for j, (b, _) in enumerate(names) if i != j and (i + j) % 5 == 0]
    flipped = 0
    for doc in predictor.annotate(held_out):
        sentence = doc.sentences[0]
        first, second = sentence.mentions[0].actor, sentence.mentions[1].actor
        stances = {(p.source, p.target): p.stance for p in sentence.pairs}
        flipped += stances[(first, second)] != stances[(second, first)]
    assert flipped >= 0.8 * len(held_out), f"direction changed the answer for {flipped}/{len(held_out)} pairs"


def test_pooling_is_the_mean_of_the_hidden_states_over_the_ranges():
    """Prefix-sum pooling against the definition: several ranges of one actor pool their tokens together,
    padding ranges (b = a) add nothing, an item without tokens pools to zeros."""
    from stancelens.model.transformer import HeadedEncoder

    torch.manual_seed(0)
    hidden = torch.randn(2, 7, 4)
    rows = torch.tensor([0, 1, 1, 0])
    ranges = torch.tensor([
        [[1, 3], [0, 0]],  # one span
        [[2, 4], [5, 7]],  # an actor named twice
        [[0, 0], [0, 0]],  # nothing left after cropping
        [[6, 7], [1, 2]],
    ])
    got = HeadedEncoder.pool(hidden, rows, ranges)
    for i in range(len(rows)):
        tokens = [hidden[rows[i], t] for a, b in ranges[i].tolist() for t in range(a, b)]
        expected = torch.stack(tokens).mean(0) if tokens else torch.zeros(4)
        assert torch.allclose(got[i], expected, atol=1e-6), i
