from stancelens.model.sentences import split_sentences


def texts(doc: str) -> list[str]:
    return [s.text for s in split_sentences(doc)]


def test_abbreviations_do_not_end_sentences():
    doc = "The U.S. and the U.N. met on Oct. 7 in Washington. Then Gen. Smith left."
    assert texts(doc) == ["The U.S. and the U.N. met on Oct. 7 in Washington.", "Then Gen. Smith left."]


def test_closing_quote_and_citation_stay_with_their_sentence():
    doc = 'He said "we will help." Russia agreed.[12] The talks ended.[citation needed] Next.'
    assert texts(doc) == ['He said "we will help."', "Russia agreed.[12]", "The talks ended.[citation needed]", "Next."]


def test_full_stop_inside_a_closed_quotation_does_not_split():
    doc = 'Bogdanov said: "If they are willing, we are in favor. Especially now." Then he left.'
    assert texts(doc) == ['Bogdanov said: "If they are willing, we are in favor. Especially now."', "Then he left."]


def test_line_breaks_end_headlines_and_offsets_are_kept():
    doc = "Putin Emphasizes Support for Abbas\n\nMoscow hosted talks. Hamas came."
    spans = split_sentences(doc)
    assert [s.text for s in spans] == ["Putin Emphasizes Support for Abbas", "Moscow hosted talks.", "Hamas came."]
    for s in spans:
        assert doc[s.start : s.end] == s.text


def test_initials_are_not_sentence_ends():
    assert texts("George W. Bush met Abbas. It rained.") == ["George W. Bush met Abbas.", "It rained."]
