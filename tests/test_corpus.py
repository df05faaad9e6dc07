"""The embedded corpus: label space, parallel locales, determinism, held-out pretraining, errors."""

import hashlib

import pytest

from slufit.cli import main
from slufit.corpus.generator import LOCALES, SLOT, build_corpus, corpus_stats, group_of, load_locale
from slufit.data.example import read_examples

SMALL = dict(n_train=300, n_dev=40, n_test=80, n_pretrain=300)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, LOCALES, seed=3, **SMALL)
    return out


@pytest.mark.parametrize("locale", LOCALES)
def test_label_space_is_large_enough(locale):
    stats = corpus_stats(locale)
    assert stats["scenarios"] >= 12 and stats["intents"] >= 30 and stats["entity_types"] >= 15
    intents = set(load_locale(locale).templates)
    for name in ("alarm_set", "alarm_query", "alarm_remove", "iot_hue_lightoff", "iot_hue_lightchange",
                 "calendar_set", "calendar_query", "transport_ticket", "takeaway_order", "qa_factoid"):
        assert name in intents


def test_locales_are_parallel():
    en = load_locale("en-US")
    for locale in LOCALES:
        data = load_locale(locale)
        assert list(data.templates) == list(en.templates)
        assert set(data.fillers) == set(en.fillers)
        for intent, templates in data.templates.items():
            assert len(templates) == len(en.templates[intent]), (locale, intent)
            for ours, theirs in zip(templates, en.templates[intent]):
                assert sorted(SLOT.findall(ours)) == sorted(SLOT.findall(theirs)), (locale, ours)
        groups: dict[str, set[str]] = {}
        for kind, fillers in data.fillers.items():
            assert fillers == [f.lower() for f in fillers] and len(set(fillers)) == len(fillers), (locale, kind)
            for i, filler in enumerate(fillers):
                groups.setdefault(filler, set()).add(group_of(i))
        # A string that fills two types ("midi": time and timeofday) is held out on one side only.
        assert all(len(g) == 1 for g in groups.values()), [f for f, g in groups.items() if len(g) > 1]


def test_examples_are_valid_and_fillers_verbatim(corpus):
    for locale in LOCALES:
        for split, n in (("train", 300), ("dev", 40), ("test", 80), ("pretrain", 300)):
            examples = read_examples(corpus / locale / f"{split}.jsonl")  # validates every line
            assert len(examples) == n
            for e in examples:
                assert e.source == "embedded" and e.locale == locale and e.text == e.text.lower()
                for entity in e.entities:
                    assert entity.filler in e.text
                assert len(e.text.split()) <= 16, e.text
        test = read_examples(corpus / locale / "test.jsonl")
        assert sum(1 for e in test if not e.entities) > 0 and sum(1 for e in test if len(e.entities) >= 2) > 0
        assert len({e.intent for e in read_examples(corpus / locale / "train.jsonl")}) >= 30


def test_pretrain_templates_and_fillers_disjoint_from_test(corpus):
    for locale in LOCALES:
        data = load_locale(locale)
        test = read_examples(corpus / locale / "test.jsonl") + read_examples(corpus / locale / "dev.jsonl")
        pretrain = read_examples(corpus / locale / "pretrain.jsonl")
        test_fillers = {(x.type, x.filler) for e in test for x in e.entities}
        pre_fillers = {(x.type, x.filler) for e in pretrain for x in e.entities}
        assert test_fillers and pre_fillers and not (test_fillers & pre_fillers)
        # No filler string is shared either (a word used as two types would leak).
        assert not ({f for _, f in test_fillers} & {f for _, f in pre_fillers})
        # Templates: the template that made a text is the one that gives back the text from its entities.
        def templates_of(examples):
            found = set()
            for e in examples:
                for i, template in enumerate(data.templates[e.intent]):
                    fillers = iter(x.filler for x in e.entities)
                    if (SLOT.findall(template) == [x.type for x in e.entities]
                            and SLOT.sub(lambda m: next(fillers), template) == e.text):
                        found.add((e.intent, i))
                        break
                else:
                    raise AssertionError(f"no template makes {e.text!r}")
            return found
        test_t, pre_t = templates_of(test), templates_of(pretrain)
        assert {group_of(i) for _, i in test_t} == {"slu"} and {group_of(i) for _, i in pre_t} == {"pre"}
        assert not (test_t & pre_t)
        assert not ({e.text for e in test} & {e.text for e in pretrain})


def test_test_texts_with_slots_are_not_in_train(corpus):
    train = {e.text for e in read_examples(corpus / "en-US" / "train.jsonl")}
    test = [e for e in read_examples(corpus / "en-US" / "test.jsonl") if e.entities]
    assert test and not any(e.text in train for e in test)


def test_confusable_intents_share_words(corpus):
    train = read_examples(corpus / "en-US" / "train.jsonl")
    alarm_intents = {e.intent for e in train if "alarm" in e.text.split()}
    assert {"alarm_set", "alarm_query", "alarm_remove"} <= alarm_intents
    light_intents = {e.intent for e in train if "lights" in e.text.split()}
    assert {"iot_hue_lightoff", "iot_hue_lighton", "iot_hue_lightchange"} <= light_intents


def _digests(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.jsonl"))}


def test_cli_same_seed_byte_identical(tmp_path):
    args = ["--locales", "en-US,de-DE", "--train", "100", "--dev", "10", "--test", "20", "--pretrain", "50"]
    assert main(["corpus", "build", "--out", str(tmp_path / "a"), "--seed", "7", *args]) == 0
    assert main(["corpus", "build", "--out", str(tmp_path / "b"), "--seed", "7", *args]) == 0
    assert main(["corpus", "build", "--out", str(tmp_path / "c"), "--seed", "8", *args]) == 0
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert len(a) == 8 and a == b and a != c


def test_defaults_work(tmp_path):
    counts = build_corpus(tmp_path, ["es-ES"])
    assert counts == {"es-ES": {"train": 2000, "dev": 200, "test": 300, "pretrain": 3000}}


def test_unknown_locale_fails_and_keeps_outputs(tmp_path, capsys):
    base = ["corpus", "build", "--out", str(tmp_path), "--train", "20", "--dev", "5", "--test", "5",
            "--pretrain", "10"]
    assert main([*base, "--locales", "fr-FR"]) == 0
    before = _digests(tmp_path)
    assert main([*base, "--locales", "fr-FR,xx-XX", "--seed", "9"]) == 2
    assert "unknown locale 'xx-XX'" in capsys.readouterr().err
    assert _digests(tmp_path) == before


def test_too_many_asked_fails_clearly(tmp_path):
    from slufit.errors import SlufitError
    with pytest.raises(SlufitError, match="distinct pretrain utterances"):
        build_corpus(tmp_path, ["en-US"], n_train=10, n_dev=10, n_test=10, n_pretrain=100000)
    assert not any(tmp_path.iterdir())


def test_unwritable_output_fails_clearly(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["corpus", "build", "--out", str(blocker / "sub"), "--locales", "en-US", "--train", "5"]) == 2
    assert "cannot write here" in capsys.readouterr().err


@pytest.mark.parametrize("locale", LOCALES)
def test_some_test_templates_are_shared_by_confusable_intents(locale):
    """As in SLURP, a few short requests are genuinely ambiguous ("my shopping list"), so text alone cannot
    reach 100 %; they are in the test group."""
    owners: dict[str, set[str]] = {}
    for intent, templates in load_locale(locale).templates.items():
        for i, template in enumerate(templates):
            if group_of(i) == "slu":
                owners.setdefault(template, set()).add(intent)
    shared = {t: o for t, o in owners.items() if len(o) > 1}
    assert len(shared) >= 4
    assert any({"lists_createoradd", "lists_query", "lists_remove"} <= o for o in shared.values())


def test_single_keyword_rule_is_far_from_perfect(corpus):
    """Predict the intent from the utterance's most intent-specific word (as learned on train)."""
    from collections import Counter, defaultdict
    train = read_examples(corpus / "en-US" / "train.jsonl")
    test = read_examples(corpus / "en-US" / "test.jsonl")
    by_word: dict[str, Counter] = defaultdict(Counter)
    for e in train:
        for word in set(e.text.split()):
            by_word[word][e.intent] += 1

    def predict(text):
        scored = [(c.most_common(1)[0][1] / sum(c.values()), sum(c.values()), c.most_common(1)[0][0])
                  for c in (by_word[w] for w in text.split() if w in by_word)]
        return max(scored)[2] if scored else None

    accuracy = sum(predict(e.text) == e.intent for e in test) / len(test)
    assert 0.3 < accuracy < 0.95
