from stancelens.model.framing import LexiconFramer


def frame(registry, text):
    mentions = registry.find_mentions(text, [(0, len(text))])[0]
    framer = LexiconFramer(registry.standard)
    return list(zip([m.text for m in mentions], framer.frame_sentence(text, (0, len(text)), mentions)))


def test_quoted_voice_with_speaker():
    from stancelens.model.registry import default_registry

    got = dict(frame(default_registry(), "Netanyahu called Hamas terrorists."))
    d = got["Hamas"]
    assert (d.label, d.term.text, d.voice, d.speaker, d.negated) == ("terrorist", "terrorists", "quoted", "israel", False)


def test_negation_and_modifier_negation(registry):
    d = dict(frame(registry, "Putin said he does not consider Hamas a freedom fighter organization."))["Hamas"]
    assert (d.label, d.negated, d.voice, d.speaker) == ("resistance", True, "quoted", "russia")
    d = dict(frame(registry, "He stressed that Hamas was not a monolithic movement."))["Hamas"]
    assert (d.label, d.negated) == ("political", False)


def test_every_side_alike(registry):
    got = dict(frame(registry, "Tehran condemned the Zionist regime, while the Iranian regime hailed Hamas radicals."))
    assert got["the Zionist regime"].label == "regime"
    assert got["Iranian"].label == "regime"
    assert got["Hamas"].label == "extremist"
    assert got["Tehran"].label == "none"


def test_premodifier_belongs_to_the_name_not_the_demonym(registry):
    got = frame(registry, "Bogdanov met the Palestinian militant group Hamas.")
    labels = {text: d.label for text, d in got}
    assert labels == {"Bogdanov": "none", "Palestinian": "none", "Hamas": "militant"}
