"""Who is meant (codebook §8): descriptors and pronouns resolved or left out, voice in three values,
speakers across sentences. Rules only: the lexicon engine runs them as every engine does."""

import pytest

from stancelens.model.lexicon import LexiconEngine
from stancelens.model.pipeline import prepare_document
from stancelens.model.predictor import DocumentInput, Predictor

# The issue's paragraph (#14): tests/helpers.py, checked through the CLI, the service and batch too.
from tests.helpers import PARAGRAPH, check_paragraph


@pytest.fixture(scope="module")
def predictor():
    return Predictor(LexiconEngine())


def mentions(registry, text):
    return [(m.text, m.actor, m.kind, m.via) for s in prepare_document(text, registry) for m in s.mentions]


def annotate(predictor, text):
    return predictor.annotate([DocumentInput("d", text)])[0]


def framed(doc, text):
    return next(m for s in doc.sentences for m in s.mentions if m.text == text).framing


def voiced(doc, text):
    """(voice, speaker) of the framing of the mention with this text."""
    framing = framed(doc, text)
    return framing.voice, framing.speaker


def test_issue_paragraph_readings(predictor):
    check_paragraph(annotate(predictor, PARAGRAPH).model_dump())


def test_descriptor_with_two_candidates_is_never_guessed(registry):
    text = ("Hamas and Palestinian Islamic Jihad both claimed the attack. "
            "The militant group said the gunman was one of its members.")
    found = mentions(registry, text)
    assert not any(kind == "descriptor" for _, _, kind, _ in found), found


def test_apposition_and_predicate_are_framing_not_mentions(registry, predictor):
    text = "Hamas, the militant group that rules Gaza, said Israel was an occupying power."
    assert [m[0] for m in mentions(registry, text)] == ["Hamas", "Israel"]
    doc = annotate(predictor, "Israel struck Gaza. Hamas, the militant group that rules Gaza, fired rockets.")
    assert framed(doc, "Hamas").label == "militant"


def test_contrast_excludes_the_clause_subject(registry):
    text = ("Hamas and Fatah met in Cairo. Fatah later accused the movement of sabotaging the talks.")
    found = mentions(registry, text)
    assert ("the movement", "hamas", "descriptor", "coreference") in found


def test_same_head_noun_decides(registry):
    text = ("Russia's Foreign Ministry summoned the Israeli ambassador. "
            "The ministry said the strike was unacceptable.")
    assert ("The ministry", "russia", "descriptor", "coreference") in mentions(registry, text)


def test_pronouns_resolve_only_with_one_candidate(registry):
    assert ("Its", "hamas", "pronoun", "coreference") in mentions(
        registry, "Hamas fired rockets at Sderot. Its statement called it revenge.")
    two = mentions(registry, "Russia urged Israel to halt its offensive.")
    assert not any(kind == "pronoun" for _, _, kind, _ in two), two
    assert not any(kind == "pronoun" for _, _, kind, _ in mentions(registry, "Hamas met in Doha. It is likely to agree."))


def test_pronoun_antecedent_and_pairs_through_coreference_are_marked(predictor):
    doc = annotate(predictor, "Hamas fired rockets at Sderot. Its statement said Netanyahu would pay.")
    second = doc.sentences[1]
    its = next(m for m in second.mentions if m.text == "Its")
    assert (its.actor, its.via) == ("hamas", "coreference")
    antecedent = next(m for s in doc.sentences for m in s.mentions if m.id == its.antecedent)
    assert antecedent.text == "Hamas"
    pair = next(p for p in second.pairs if (p.source, p.target) == ("israel", "hamas"))
    assert pair.via == "coreference"


def test_voice_has_three_values(predictor):
    doc = annotate(predictor, '"Hamas terrorists will pay," Netanyahu said.')
    assert voiced(doc, "Hamas") == ("quoted", "israel")
    doc = annotate(predictor, "Netanyahu said Hamas terrorists would pay.")
    assert voiced(doc, "Hamas") == ("reported", "israel")
    doc = annotate(predictor, "Hamas militants fired rockets at Ashkelon.")
    assert voiced(doc, "Hamas") == ("author", None)


def test_speaker_across_sentences_and_speaker_text(predictor):
    doc = annotate(predictor, "Netanyahu spoke to reporters in Jerusalem. He added that Hamas terrorists would pay.")
    assert voiced(doc, "Hamas") == ("reported", "israel")
    doc = annotate(predictor, "An analyst at a Doha think tank said Hamas militants were regrouping.")
    hamas = framed(doc, "Hamas")
    assert (hamas.voice, hamas.speaker, hamas.speaker_text) == ("reported", None, "An analyst at a Doha think tank")
    doc = annotate(predictor, "Britain's home secretary spoke on Friday. "
                              '"Hamas is a terrorist organisation," the home secretary told Parliament.')
    assert voiced(doc, "Hamas") == ("quoted", "united_kingdom")


def test_headline_form_is_quoted(predictor):
    doc = annotate(predictor, "Israeli PM: Hamas terrorists will pay\nThe army struck Gaza overnight.")
    assert voiced(doc, "Hamas") == ("quoted", "israel")


def test_a_batch_gives_what_single_calls_give(predictor):
    texts = [PARAGRAPH, "Hamas fired rockets. Its statement called it revenge.", "Netanyahu said Hamas terrorists would pay."]
    together = predictor.annotate([DocumentInput(str(i), t) for i, t in enumerate(texts)])
    alone = [predictor.annotate([DocumentInput(str(i), t)])[0] for i, t in enumerate(texts)]
    assert [d.model_dump() for d in together] == [d.model_dump() for d in alone]


def test_evaluation_verbs_blame_and_denial_report_the_speakers_word(predictor):
    doc = annotate(predictor, "Hamas condemned the decision as a gift to the occupation.")
    assert voiced(doc, "the occupation") == ("reported", "hamas")
    doc = annotate(predictor, "A Hamas spokesman denied the accounts and blamed the occupation for the chaos.")
    assert voiced(doc, "the occupation") == ("reported", "hamas")
    # an "as" of time is no evaluation, and a directive's object stays the author's (§8.5)
    doc = annotate(predictor, "Hamas fired rockets. Israel struck Gaza as the militant group fired more.")
    assert framed(doc, "the militant group").voice == "author"
    doc = annotate(predictor, "Hamas fired rockets. Egypt urged the militant group to stop.")
    assert framed(doc, "the militant group").voice == "author"


def test_people_a_demonym_describes_do_not_speak_for_the_state(predictor):
    doc = annotate(predictor, "Israeli commentators described the statement as proof that the Kremlin had "
                              "sided with Hamas terrorists.")
    hamas = framed(doc, "Hamas")
    assert (hamas.voice, hamas.speaker, hamas.speaker_text) == ("reported", None, "Israeli commentators")
    doc = annotate(predictor, "Israeli officials described the statement as proof that the Kremlin had "
                              "sided with Hamas terrorists.")
    assert framed(doc, "Hamas").speaker == "israel"


def test_a_title_refers_back_to_the_official_who_carried_it(predictor):
    doc = annotate(predictor, '"Jordan will not be a battlefield," King Abdullah II told lawmakers. '
                              "The king also accused the Israeli government of stoking extremism.")
    israeli = framed(doc, "Israeli")
    assert (israeli.voice, israeli.speaker, israeli.speaker_text) == ("reported", "jordan", None)


def test_a_titled_official_is_the_subject_that_contrast_removes(registry):
    # the title and the actor named in it open the subject: "the country" is not the accuser's state
    text = ("Israel recalled its diplomats from Ankara in protest, and Foreign Minister Israel Katz accused "
            "the country of becoming a haven for the organization.")
    assert ("the country", "turkey", "descriptor", "coreference") in mentions(registry, text)


def test_a_quotation_is_not_the_subject_that_a_pronoun_continues(predictor):
    doc = annotate(predictor, "\"The Zionist regime is on the verge of collapse,\" Iran's Foreign Ministry said "
                              "on Monday. It added that the occupation's crimes in Gaza had exposed the West.")
    it = next(m for s in doc.sentences for m in s.mentions if m.text == "It")
    assert it.actor == "iran"
    occupation = framed(doc, "the occupation")
    assert (occupation.voice, occupation.speaker) == ("reported", "iran")


def test_a_phrase_after_the_verb_is_no_inverted_speaker(predictor):
    doc = annotate(predictor, "Hezbollah buried three fighters on Sunday. Its secretary-general, Naim Qassem, said "
                              "in a televised speech that his fighters could strike the occupation.")
    occupation = framed(doc, "the occupation")
    assert (occupation.voice, occupation.speaker, occupation.speaker_text) == ("reported", "hezbollah", None)


def test_same_head_of_a_name_with_of(registry):
    text = ("Historians say the Comintern paid the Communist Party of Palestine for years. "
            "The party never won a mass following.")
    assert ("The party", "communist_party_of_palestine", "descriptor", "coreference") in mentions(registry, text)


def test_a_capitalised_head_refers_only_by_repeating_a_name(registry):
    text = ("Israel and the Palestinian Authority resumed security talks on Monday. "
            "Officials said the Authority would take over two checkpoints.")
    assert ("the Authority", "palestinian_authority", "descriptor", "coreference") in mentions(registry, text)
    # No name ends in "Hague": a capitalised word after "the" is no descriptor by kind alone.
    text = "Israel and Egypt exchanged letters on Monday. The Hague said it would hear the case."
    assert not any(kind == "descriptor" for _, _, kind, _ in mentions(registry, text)), mentions(registry, text)
    # A capitalised modifier before a head noun is still read as a modifier ("the Islamist group").
    text = "Israel struck Hamas positions overnight. The Islamist group said two fighters died."
    assert ("The Islamist group", "hamas", "descriptor", "coreference") in mentions(registry, text)


def test_an_indefinite_hostile_head_frames_its_phrase(registry, predictor):
    # Two states and no cue: still never guessed.
    text = "Egypt and Jordan signed a border pact. An analyst called it a deal with a regime that tortures prisoners."
    assert not any(m[0] == "a regime" for m in mentions(registry, text)), mentions(registry, text)
    text = "Iran seized a tanker on Thursday. Washington called the seizure piracy by a regime that ignores the law."
    assert ("a regime", "iran", "descriptor", "coreference") in mentions(registry, text)
    # A plain indefinite head ("a group") still introduces a new referent.
    text = "Hamas met Fatah in Doha. Fatah said it would not share power with a group that keeps its weapons."
    assert not any(m[0] == "a group" for m in mentions(registry, text))


def test_who_does_not_speak_for_an_actor(predictor):
    # A former office-holder no longer speaks for the actor (§2.5).
    doc = annotate(predictor, "A former Israeli defence official said Hamas terrorists had planned the raid for months.")
    hamas = framed(doc, "Hamas")
    assert (hamas.voice, hamas.speaker, hamas.speaker_text) == ("reported", None, "A former Israeli defence official")
    # A name inside a hyphenated modifier says where the speaker is.
    doc = annotate(predictor, "Beirut-based analyst Rami Khoury said the Zionist regime would not risk a second front.")
    regime = framed(doc, "the Zionist regime")
    assert (regime.voice, regime.speaker) == ("reported", None)
    assert regime.speaker_text is not None and "analyst" in regime.speaker_text
    # An actor's allies are not the actor.
    doc = annotate(predictor, "Tehran's allies in Yemen said the occupation would pay for the strikes.")
    occupation = framed(doc, "the occupation")
    assert (occupation.voice, occupation.speaker) == ("reported", None), occupation


def test_a_naming_verb_with_its_own_subject_governs_its_words(predictor):
    doc = annotate(predictor, "Hamas said the truce was over, and Fatah's spokesman called the raid "
                              "a crime of the occupation army.")
    assert voiced(doc, "the occupation army") == ("reported", "fatah")
    # Without a subject of its own the speech verb's speaker stays ("Hamas said … and called …").
    doc = annotate(predictor, "Hamas said the truce was over and called the raid a crime of the occupation army.")
    assert voiced(doc, "the occupation army") == ("reported", "hamas")


def test_she_and_he_agree_with_the_official(registry):
    text = ("Ukrainian President Volodymyr Zelensky met European Commission President Ursula von der Leyen in "
            "Brussels. She promised more aid, and he thanked her.")
    found = mentions(registry, text)
    assert ("She", "european_union", "pronoun", "coreference") in found
    assert ("he", "ukraine", "pronoun", "coreference") in found
    assert ("her", "european_union", "pronoun", "coreference") in found
    # An unnamed titled person may be either: two candidates, no guess.
    text = "Ursula von der Leyen met Egypt's foreign minister in Cairo. The talks ended before she left."
    assert not any(m[0] == "she" for m in mentions(registry, text)), mentions(registry, text)


def test_female_officials_are_registry_officials(registry):
    officials = {text for actor in registry.actors.values() for text, kind in actor.aliases if kind == "official"}
    listed = set(registry.standard.resolution["female_officials"])
    assert listed and listed <= officials, sorted(listed - officials)


def test_a_trait_among_the_modifiers_chooses_or_excludes(registry):
    # Two armed groups, one of them Lebanese: the modifier decides (§8.1 trait agreement).
    text = "Israeli jets struck Hezbollah and Hamas positions overnight. The Lebanese group said it would respond."
    assert ("The Lebanese group", "hezbollah", "descriptor", "coreference") in mentions(registry, text)
    # The only movement in the window is not Islamist: no mention, rather than the wrong actor.
    text = "Fatah officials met in Ramallah on Monday. The Islamist movement was not invited."
    assert not any(kind == "descriptor" for _, _, kind, _ in mentions(registry, text))
    # A head noun can be a trait too: Israel is no kingdom.
    text = "Saudi Arabia froze talks with Israel. The kingdom said recognition needs a Palestinian state."
    assert ("The kingdom", "saudi_arabia", "descriptor", "coreference") in mentions(registry, text)
    # A modifier no actor has restricts nothing: two candidates stay a tie.
    text = "Hamas and Palestinian Islamic Jihad both claimed the attack. The powerful group said it had fired first."
    assert not any(kind == "descriptor" for _, _, kind, _ in mentions(registry, text))


def test_a_registry_without_traits_restricts_nothing(registry):
    from dataclasses import replace

    from stancelens.model.registry import Registry

    bare = Registry(registry.version, {k: replace(a, traits=()) for k, a in registry.actors.items()},
                    registry.exclusions, registry.contextual, registry.rules, registry.standard, registry.kinds)
    text = "Fatah officials met in Ramallah on Monday. The Islamist movement was not invited."
    assert ("The Islamist movement", "fatah", "descriptor", "coreference") in mentions(bare, text)


def test_traits_are_lower_case_modifiers_of_one_word_or_more(registry):
    words = registry.trait_words
    assert {"islamist", "lebanese", "kingdom", "iran-backed", "central asian"} <= words
    assert all(w == w.lower() and w.strip() == w for w in words)


def test_a_closing_attribution_and_a_possessor_after_a_comma_are_no_apposition(registry):
    text = "Germany banned all fundraising for Hamas and Hezbollah, the interior ministry said."
    assert ("the interior ministry", "germany", "descriptor", "coreference") in mentions(registry, text)
    text = ("Israeli jets struck Hamas and Hezbollah targets on Monday. "
            "In Beirut, the Shiite group's media office said the strikes would be answered.")
    assert ("the Shiite group", "hezbollah", "descriptor", "coreference") in mentions(registry, text)
    # An apposition stays the name's framing term.
    text = "Israel struck Gaza. Hamas, the militant group, said it would respond."
    assert not any(kind == "descriptor" for _, _, kind, _ in mentions(registry, text))


def test_a_place_in_a_based_compound_is_not_the_referent(registry):
    text = ("Israel killed a Hamas commander in a drone strike on a Beirut suburb, and Hezbollah vowed revenge. "
            "The Beirut-based group said its fighters were on alert.")
    found = mentions(registry, text)
    assert ("group", "hezbollah", "descriptor", "coreference") in found, found  # the phrase after the compound
    assert ("Beirut", "lebanon", "metonym", None) in found


def test_the_addressee_of_told_or_warned_is_the_authors_word(predictor):
    doc = annotate(predictor, "Russian Foreign Minister Sergei Lavrov received a Hamas delegation in Moscow. "
                              "He told the militant group's envoys that Moscow wanted a ceasefire.")
    assert voiced(doc, "the militant group") == ("author", None)
    # what is told stays the speaker's word
    doc = annotate(predictor, "Hamas fired rockets at Ashkelon. Israel's ambassador told reporters that the terrorist "
                              "group must be destroyed.")
    assert voiced(doc, "the terrorist group")[0] == "reported"


def test_a_naming_verb_governs_a_term_deeper_in_its_object(predictor):
    doc = annotate(predictor, "Britain banned the group on Friday. Hamas called the decision a blatant bias "
                              "toward the Zionist occupation and urged London to reverse it.")
    assert voiced(doc, "the Zionist occupation") == ("reported", "hamas")
    # "called for" names nothing
    doc = annotate(predictor, "Hamas called for an end to the Zionist occupation of Palestinian land.")
    assert voiced(doc, "the Zionist occupation")[0] == "author"


def test_a_title_for_people_who_speak_for_no_actor_does_not_refer_back(predictor):
    doc = annotate(predictor, 'A UN human rights expert accused Israel of collective punishment on Monday. '
                              '"The occupation is using starvation as a weapon," the expert told reporters.')
    framing = framed(doc, "The occupation")
    assert (framing.voice, framing.speaker, framing.speaker_text) == ("quoted", None, "the expert")


def test_the_resistance_is_an_armed_groups_descriptor(registry):
    text = ("Israeli strikes killed three Hezbollah commanders last week. "
            "The group's deputy leader said the resistance was stronger than ever.")
    assert ("the resistance", "hezbollah", "descriptor", "coreference") in mentions(registry, text)
    # two armed groups, no cue: never guessed
    text = "Hamas and Palestinian Islamic Jihad fired rockets at Ashkelon. Residents said the resistance had warned them."
    assert not any(m[0] == "the resistance" for m in mentions(registry, text))


def test_a_bare_plural_label_is_an_indefinite_descriptor(registry, predictor):
    text = ("Egypt's president received Hamas leader Ismail Haniyeh in Cairo on Wednesday. "
            "Israeli officials said the meeting was a reward for terrorists.")
    assert ("terrorists", "hamas", "descriptor", "coreference") in mentions(registry, text)
    assert voiced(annotate(predictor, text), "terrorists") == ("reported", "israel")
    # two armed groups and no cue: never guessed; people and "of" phrases are no label
    text = "Hamas and Hezbollah fired rockets on Monday. Israel vowed to hunt down terrorists."
    assert not any(m[0] == "terrorists" for m in mentions(registry, text))
    text = "Hamas fired rockets on Monday. Fatah called the Israeli cabinet a government of extremists."
    assert not any(m[0] == "extremists" for m in mentions(registry, text))


def test_a_pronoun_speaker_after_a_quote_is_not_what_the_quote_calls_a_regime(registry):
    text = ('"Iran has shown its true face to the whole world," Herzog said. '
            '"That regime is an empire of evil," he added.')
    assert ("That regime", "iran", "descriptor", "coreference") in mentions(registry, text)
    # two earlier officials of different actors: the speaker is unknown, so no actor is excluded
    text = ('Herzog met Putin in Moscow. "That regime is an empire of evil," he added.')
    assert not any(m[0] == "That regime" for m in mentions(registry, text))


SPEAKER_CUES = [
    # "his mandate" opens the clause, but its subject is the mandate: the speaker stays Hamas
    ("Mahmoud Abbas said he would not accept any Hamas role in Gaza. Hamas responded that his mandate had expired "
     "and accused Fatah of serving the Israeli occupation.", "Israeli", ("reported", "hamas", None)),
    # an actor's allies through a possessive pronoun are not the actor, and a progressive verb is finite
    ("Tehran has not commented, but its allies online are already calling the raid an act of the Zionist "
     "occupation.", "the Zionist occupation", ("reported", None, "allies")),
    # "media office" is the actor's own office, unlike "Israeli media"
    ("Germany banned fundraising for Hezbollah on Thursday. In Beirut, the group's media office dismissed the ban "
     "as a gift to the Zionist regime.", "the Zionist regime", ("reported", "hezbollah", None)),
    # words after a speech verb are its content, not an inverted speaker; words first, the speaker follows
    ("An Israeli official, speaking on condition of anonymity, said Hezbollah terrorists had fired the rockets.",
     "Hezbollah", ("reported", "israel", None)),
    ('"The Zionist regime will pay," said Iranian Foreign Minister Abbas Araghchi.', "The Zionist regime",
     ("quoted", "iran", None)),
    # the participle of a speech verb reports like the verb
    ("Iran's foreign ministry spokesman hit back, telling state television that the Zionist entity was the only "
     "nuclear-armed regime in the region.", "the Zionist entity", ("reported", "iran", None)),
    # an "as" phrase ends where a new clause with its own speech verb begins
    ("Hamas denounced the move as illegitimate, and a spokesman for the Fatah movement replied that the "
     "Islamist movement had no say.", "the Islamist movement", ("reported", "fatah", None)),
    # "in Beirut" places a channel; "officials in London" speak for the state
    ("Hezbollah did not comment, but a pro-Iranian television channel in Beirut said Israeli terrorists had "
     "struck the village.", "Israeli", ("reported", None, "channel")),
    ("Officials in London said the occupation of Palestinian land must end.", "the occupation",
     ("reported", "united_kingdom", None)),
    # a former office-holder, "UN expert", "state media": no actor speaks
    ("A former Israeli national security adviser described Hezbollah as a terrorist militia.", "Hezbollah",
     ("reported", None, "former")),
    ("UN expert: Israel's occupation of Palestinian land must end", "Israel", ("quoted", None, "UN expert")),
    ("Syrian state media accused the Turkish occupation forces of shelling villages near Qamishli.", "Turkish",
     ("reported", None, "state media")),
    # "Hezbollah and Hamas" is one object: the second verb's subject is still "He"
    ("Iranian President Ebrahim Raisi spoke at a rally in Tehran. He praised Hezbollah and Hamas as the vanguard "
     "and said they had humiliated the occupation army.", "the occupation army", ("reported", "iran", None)),
    # "The statement" is what the previous sentence's speaker issued
    ("Hezbollah's media office said the strikes would continue. The statement also accused the occupation of "
     "using phosphorus shells.", "the occupation", ("reported", "hezbollah", None)),
    # a title refers back to its holder, and "the minister" to "the ministry"
    ("Secretary of State Antony Blinken arrived in Riyadh on Wednesday. The secretary told reporters that Hamas "
     "terrorists could not be allowed to rebuild.", "Hamas", ("reported", "united_states", None)),
    ("Berlin banned a network that raised money for Hamas, the interior ministry said. \"Whoever finances Hamas "
     "terrorists will face the law,\" the minister said.", "Hamas", ("quoted", "germany", None)),
    # a participle's subject is the whole opening phrase, not its article
    ("Tehran condemned the move. A senior Iranian official went further on state television, branding the bloc "
     "a puppet of the Zionist regime.", "the Zionist regime", ("reported", "iran", None)),
    # the Mossad is Israel's; "proposed that" reports
    ("Mossad chief David Barnea accused Hamas of stalling to buy time for Hamas terrorists in Rafah.", "Hamas",
     ("reported", "israel", None)),
    ("Egypt hosted a Palestinian Authority delegation on Monday. It proposed that the occupation army leave the "
     "Rafah crossing.", "the occupation army", ("reported", "egypt", None)),
    # the subject of an attribution is the author's wording, also with a relative clause or after "according to"
    ("Hamas fired rockets on Monday. The militant group, which rules Gaza, said the strikes were a response.",
     "The militant group", ("author", None, None)),
    ("Hamas fired rockets on Monday. According to the militant group, the rockets targeted army bases.",
     "the militant group", ("author", None, None)),
    # "which has vowed" speaks for what the relative pronoun stands for
    ("Hamas fired rockets on Monday. Israel, which has vowed to crush the militant group, struck back.",
     "the militant group", ("reported", "israel", None)),
    # a relative clause: its speech verb governs only the clause, its words describe in the author's voice
    ("Hezbollah fired rockets on Monday. Hezbollah, which the Lebanese government says has pulled back, did not "
     "respond, and it is unclear whether the militant group will comply.", "the militant group",
     ("author", None, None)),
    ("Qatar and Egypt have submitted a revised plan. Hamas said it was studying the proposal, but Khalil "
     "al-Hayya, who heads the group's negotiating team, told Al Jazeera the occupation was adding conditions.",
     "the group", ("author", None, None)),
    ("Hamas leader Yahya Sinwar was killed on Thursday. The movement, which the State Department has designated "
     "a terrorist group since 1997, said his death would strengthen the fight against the Zionist entity.",
     "the Zionist entity", ("reported", "hamas", None)),
    # "…, a charge the group rejected": the author's relative clause on what was said
    ("Hamas fired rockets on Monday. Israel said the militants had fired on the crowd, a charge the militant "
     "group rejected as fabricated.", "the militant group", ("author", None, None)),
    # "according to a statement from X" is X's
    ("Abbas said Hamas must disarm. According to a statement from Hamas's political bureau, the demand served "
     "the occupation.", "the occupation", ("reported", "hamas", None)),
    # a speech verb after a determiner is a noun: "had no say over"
    ("Abbas reformed the Palestinian Authority on Thursday. Hamas denounced the move, and a spokesman for Fatah "
     "replied that the Islamist movement had no say over the Authority's cabinet.", "the Authority",
     ("reported", "fatah", None)),
    # "… and accused" without a subject of its own: the earlier speech verb's speaker
    ("Hamas spokesman Hazem Qassem responded that Abbas had no mandate and accused Fatah of serving the "
     "occupation's security agenda.", "the occupation", ("reported", "hamas", None)),
    # a live-blog time is no headline colon; the speaker's colon comes after it
    ('14:05 — Hezbollah: "The Zionist entity bombed a civilian building in Nabatieh."', "The Zionist entity",
     ("quoted", "hezbollah", None)),
    # an evaluation verb reaches its "as" over a long object
    ("Iran's foreign ministry condemned the European Union's new sanctions on the Revolutionary Guards as a "
     "hostile act dictated by the Zionist regime.", "the Zionist regime", ("reported", "iran", None)),
    # an article after a verb opens no clause: the subject of "said" is still "he"
    ("Algerian President Abdelmadjid Tebboune hosted delegations from Fatah and Hamas in Algiers on Sunday. "
     "Opening the session, he praised Hamas and Fatah as the vanguard of the Palestinian cause and said they "
     "had both suffered from the occupation's crimes.",
     "the occupation", ("reported", "algeria", None)),
    # the antecedent of "that" is the subject of its verb
    ("Hezbollah fighters withdrew on Monday. They left tunnels behind, according to an Israeli military "
     "statement that called the group a terrorist army.", "the group", ("reported", "israel", None)),
    # "calls to expel" names nothing: the descriptor is the author's
    ("Qatar has hosted Hamas since 2012. The Gulf state has refused repeated calls to expel the militant group's "
     "officials.", "the militant group", ("author", None, None)),
]


@pytest.mark.parametrize("text, span, expected", SPEAKER_CUES)
def test_speaker_cues(predictor, text, span, expected):
    framing = [m for s in annotate(predictor, text).sentences for m in s.mentions if m.text == span][-1].framing
    voice, speaker, words = expected
    assert (framing.voice, framing.speaker) == (voice, speaker), framing
    if words is None:
        assert framing.speaker_text is None
    else:
        assert framing.speaker_text is not None and words in framing.speaker_text, framing


def test_descriptor_cues_from_dev10(registry):
    # an actor's titled person acts for it: "Israel's prime minister thanked the administration" is not Israel
    text = ("Washington approved a new package of military aid to Israel on Friday. "
            "Israel's prime minister thanked the administration for the aid.")
    assert ("the administration", "united_states", "descriptor", "coreference") in mentions(registry, text)
    # the same head noun after a possessive and a modifier
    text = "Lebanon's caretaker cabinet met in Beirut on Monday. The cabinet has no power to disarm Hezbollah."
    assert ("The cabinet", "lebanon", "descriptor", "coreference") in mentions(registry, text)
    # "of deliberately targeting" is the accusation, not an owner; the compound's actor is never the referent
    text = ("Syrian government forces shelled towns in Idlib, hours after Russian jets struck a market. "
            "Turkey accused the Russian-backed regime of deliberately targeting civilians.")
    assert ("regime", "syria", "descriptor", "coreference") in mentions(registry, text)  # after the compound


def test_the_charge_after_accused_is_no_owner(registry):
    text = "Hamas fired rockets at Ashkelon on Monday. Israel accused the group of war crimes."
    assert ("the group", "hamas", "descriptor", "coreference") in mentions(registry, text)
    # an "of" phrase elsewhere still owns its head: "the state of emergency" is no mention
    text = "Israel fired on Gaza on Monday. Egypt declared the state of emergency in Sinai."
    assert not any(m[0] == "the state" for m in mentions(registry, text))


def test_a_possessor_after_it_is_is_no_predicate(registry):
    text = "Hamas fired rockets on Monday. It was the group's largest barrage since May."
    assert ("the group", "hamas", "descriptor", "coreference") in mentions(registry, text)
