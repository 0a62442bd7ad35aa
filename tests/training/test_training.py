"""A real (tiny) fine-tune: the loop learns, the directory round-trips, errors are clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from stancelens.model.predictor import DocumentInput
from stancelens.training.config import TrainingConfig
from tests.helpers import MINI_CORPUS, SEEDS, assert_batch_equals_single


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
    with pytest.raises(ValueError, match=r"precision: expected 'auto', 'fp32' or 'bf16', found 'fp16'"):
        TrainingConfig(precision="fp16")
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


def test_auto_precision_is_bf16_only_where_the_cpu_has_bf16_units(tmp_path, monkeypatch):
    from stancelens.training import trainer

    amx = tmp_path / "amx"
    amx.write_text("flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    plain = tmp_path / "plain"
    plain.write_text("flags\t\t: fpu avx2 fma\n")
    from stancelens.model.precision import cpu_has_native_bf16

    assert cpu_has_native_bf16(amx)
    assert not cpu_has_native_bf16(plain)
    assert not cpu_has_native_bf16(tmp_path / "missing")
    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: False)
    assert trainer.training_precision(TrainingConfig(precision="auto")) == "fp32"
    assert trainer.training_precision(TrainingConfig(precision="bf16")) == "bf16"
    monkeypatch.setattr(trainer, "cpu_has_native_bf16", lambda: True)
    assert trainer.training_precision(TrainingConfig(precision="auto")) == "bf16"
    assert trainer.training_precision(TrainingConfig(precision="fp32")) == "fp32"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_loss_falls_in_either_training_precision(tmp_path, precision):
    from stancelens.training.trainer import train

    config = TrainingConfig(authored_path=str(MINI_CORPUS), dse_path=None, seesaw_path=None, epochs=3,
                            batch_size=16, max_length=64, authored_valid_fraction=0.2, patience=5,
                            learning_rate=1e-4, precision=precision)
    metrics = train(config, tmp_path / "m", progress=False, say=lambda m: None)
    losses = [h["mean_loss"] for h in metrics["history"]]
    assert metrics["training_precision"] == precision
    assert losses[-1] < losses[0] * 0.9, losses


def test_later_epochs_draw_subsampled_lines_afresh_and_reproducibly():
    from stancelens.training.trainer import epoch_draw

    first = epoch_draw(100, 30, 1, seed=13, resample=True)
    assert first == list(range(30))
    second = epoch_draw(100, 30, 2, seed=13, resample=True)
    third = epoch_draw(100, 30, 3, seed=13, resample=True)
    assert len(set(second)) == 30 and all(0 <= i < 100 for i in second)
    assert second != first and second != third
    assert second == epoch_draw(100, 30, 2, seed=13, resample=True)
    assert second != epoch_draw(100, 30, 2, seed=14, resample=True)
    assert epoch_draw(100, 30, 3, seed=13, resample=False) == first


def test_pooling_in_bf16_hidden_states_is_taken_in_fp32():
    """Training autocast hands bf16 hidden states to the pooling; prefix sums in bf16 would lose the
    span's signal against the running total, so the pooled value must match fp32 pooling of the same values."""
    from stancelens.model.transformer import HeadedEncoder

    torch.manual_seed(0)
    hidden = (torch.randn(1, 96, 8) + 30).to(torch.bfloat16)
    rows = torch.tensor([0])
    ranges = torch.tensor([[[90, 92]]])
    got = HeadedEncoder.pool(hidden, rows, ranges)
    expected = hidden[0, 90:92].float().mean(0)
    assert got.dtype == torch.float32
    assert torch.allclose(got[0], expected, atol=1e-4)


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


# DSE's format (bracketed p and q, both names, the 5-class label), sentences written for this test.
_DSE_LINES = [
    ("[Russia] praised [Egypt] for its mediation.", "Russia", "Egypt", 1),
    ("[Iran] condemned [Israel] over the strikes.", "Iran", "Israel", 3),
    ("[Qatar] and [Turkey] held talks in Doha.", "Qatar", "Turkey", 0),
    ("[Jordan] was thanked by [Syria] for the aid.", "Jordan", "Syria", 2),
    ("[China] was criticised by [Egypt] at the meeting.", "China", "Egypt", 4),
    ("[Turkey] sent aid to [Qatar] on Monday.", "Turkey", "Qatar", 0),
]


def _write_dse(folder: Path) -> Path:
    folder.mkdir()
    lines = [f"{text}\t{p}\t{q}\t{label}" for text, p, q, label in _DSE_LINES]
    (folder / "train.txt").write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    (folder / "valid.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_dse_pairs_get_their_own_readout_and_calibration(tmp_path):
    """DSE labels opinions only: its pairs train and are answered through a readout of their own, with
    their own temperature; news pairs never see it. A model without the readout answers DSE pairs
    through the news one."""
    from safetensors.torch import load_file, save_file

    from stancelens.model.pipeline import PairItem
    from stancelens.model.transformer import TransformerEngine
    from stancelens.training.trainer import train

    config = TrainingConfig(authored_path=str(MINI_CORPUS), dse_path=str(_write_dse(tmp_path / "dse")),
                            seesaw_path=None, epochs=1, batch_size=16, max_length=48, steps_limit=6,
                            authored_valid_fraction=0.3)
    metrics = train(config, tmp_path / "m", progress=False, say=lambda m: None)
    assert {"stance", "stance@dse", "framing"} <= set(metrics["calibration"])
    engine = TransformerEngine.load(tmp_path / "m")
    assert engine.conventions == {"dse"}
    text = "Russia praised Egypt for its mediation."
    news = PairItem(text, ((0, 6),), ((15, 20),), "russia", "egypt", ((0, 6), (15, 20)))
    dse = PairItem(text, ((0, 6),), ((15, 20),), "russia", "egypt", ((0, 6), (15, 20)), "dse")
    (news_logits, dse_logits), _ = engine.logits([news, dse], [])
    assert not torch.allclose(news_logits, dse_logits)
    # The news answer does not depend on whether a DSE pair shares the call.
    (alone,), _ = engine.logits([news], [])
    assert torch.allclose(alone, news_logits, atol=1e-6)
    with pytest.raises(ValueError, match=r"stance convention: expected 'news' or one of \['dse'\], found 'x'"):
        engine.model.stance_logits(torch.zeros(1, 4, 384), torch.tensor([0]), torch.tensor([[[1, 2]]]),
                                   torch.tensor([[[2, 3]]]), ["x"])
    # A model saved before readouts existed: DSE pairs fall back to the news readout and calibration.
    heads = load_file(str(tmp_path / "m" / "heads.safetensors"))
    save_file({k: v for k, v in heads.items() if not k.startswith("convention_readouts.")},
              str(tmp_path / "m" / "heads.safetensors"))
    old = TransformerEngine.load(tmp_path / "m")
    assert old.conventions == set()
    (a, b), _ = old.logits([news, dse], [])
    assert torch.equal(a, b)
    probs, _ = old.classify([news, dse], [])
    assert probs[0] == probs[1]


def test_without_dse_data_there_is_no_dse_readout(tiny_model):
    """The tiny model trains without DSE: an untrained DSE readout must not exist to answer DSE pairs."""
    from safetensors.torch import load_file

    from stancelens.model.transformer import TransformerEngine

    assert not [k for k in load_file(str(tiny_model / "heads.safetensors")) if k.startswith("convention_readouts.")]
    assert TransformerEngine.load(tiny_model).conventions == set()


def test_attached_term_boost_is_chosen_on_validation_and_saved(tiny_model):
    metrics = json.loads((tiny_model / "metrics.json").read_text())
    meta = json.loads((tiny_model / "stancelens.json").read_text())
    from stancelens.training.trainer import FRAMING_TERM_BOOSTS

    boost = metrics["framing_term_boost"]
    assert set(boost["macro_f1_by_boost"]) == {str(b) for b in FRAMING_TERM_BOOSTS}
    best = max(boost["macro_f1_by_boost"].values())
    assert boost["macro_f1_by_boost"][str(boost["chosen"])] == best
    assert meta["framing_term_boost"] == boost["chosen"]


def test_stance_loss_without_direction_weights_is_torch_weighted_cross_entropy():
    from stancelens.training.trainer import StanceLoss

    torch.manual_seed(1)
    logits, ys = torch.randn(9, 3), torch.tensor([0, 1, 2, 2, 2, 1, 0, 2, 2])
    weight = torch.tensor([2.0, 1.5, 0.5])
    expected = torch.nn.CrossEntropyLoss(weight=weight)(logits, ys)
    assert torch.allclose(StanceLoss(weight)(logits, ys, [True] * 9), expected)


def test_direction_weights_favour_the_rarer_text_order_of_each_stance():
    from collections import Counter

    from stancelens.training.trainer import direction_weights, source_first

    assert source_first([(5, 7)], [(9, 10)]) and not source_first([(9, 10), (12, 13)], [(5, 7)])
    assert source_first([None], [(1, 2)])  # cropped away: counted as first
    cells = Counter({(0, True): 300, (0, False): 100, (2, True): 200, (2, False): 200})
    w = direction_weights(cells, 3)
    assert w[(0, False)] > 1 > w[(0, True)]
    assert w[(2, True)] == w[(2, False)] == 1.0
    assert w[(1, True)] == w[(1, False)] == 1.0  # no examples of that stance
    assert w[(0, False)] == pytest.approx((400 / 200) ** 0.5)


def test_train_out_refuses_a_folder_that_is_not_a_model(tmp_path):
    from stancelens.training.trainer import TrainingError
    from stancelens.training.trainer import train as run_training

    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("months of work")
    config = TrainingConfig(authored_path=str(MINI_CORPUS), dse_path=None, seesaw_path=None, steps_limit=1)
    with pytest.raises(TrainingError, match="expected a new folder or a stancelens model directory, found a folder"):
        run_training(config, mine, progress=False, say=lambda m: None)
    assert (mine / "chapter1.tex").read_text() == "months of work"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(TrainingError, match="found a file"):
        run_training(config, a_file, progress=False, say=lambda m: None)


def test_a_model_directory_is_replaced_without_a_moment_without_it(tmp_path, monkeypatch):
    """The new directory is swapped in with one exchange: `out` exists at every instant, even if the
    process dies right after the swap (simulated: deleting the old copy fails)."""
    import shutil

    from stancelens.model import files

    old = tmp_path / "m"
    old.mkdir()
    (old / "stancelens.json").write_text('{"v": "old"}')
    new = tmp_path / ".m.new"
    new.mkdir()
    (new / "stancelens.json").write_text('{"v": "new"}')
    seen = []

    def dying_rmtree(path, *a, **k):
        seen.append(old.exists() and (old / "stancelens.json").read_text())
        raise KeyboardInterrupt  # killed after the swap, before the old copy is gone

    monkeypatch.setattr(shutil, "rmtree", dying_rmtree)
    with pytest.raises(KeyboardInterrupt):
        files.replace_directory(new, old)
    assert (old / "stancelens.json").read_text() == '{"v": "new"}'
    assert seen == ['{"v": "new"}']
