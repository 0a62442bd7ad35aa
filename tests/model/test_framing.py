from stancelens.model.framing import LexiconFramer


def frame(registry, text):
    mentions = registry.find_mentions(text, [(0, len(text))])[0]
    framer = LexiconFramer(registry.standard)
    return list(zip([m.text for m in mentions], framer.frame_sentence(text, (0, len(text)), mentions)))


def test_naming_verb_is_reported_voice_with_speaker():
    from stancelens.model.registry import default_registry

    got = dict(frame(default_registry(), "Netanyahu called Hamas terrorists."))
    d = got["Hamas"]
    # codebook 1.1.0 §8.4: a naming verb without quotation marks reports the speaker's word
    assert (d.label, d.term.text, d.voice, d.speaker, d.negated) == ("terrorist", "terrorists", "reported", "israel", False)
    assert d.legacy_voice == "quoted"  # what codebook 1.0.0 called it


def test_negation_and_modifier_negation(registry):
    d = dict(frame(registry, "Putin said he does not consider Hamas a freedom fighter organization."))["Hamas"]
    assert (d.label, d.negated, d.voice, d.speaker) == ("resistance", True, "reported", "russia")
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
