"""The output parser reads what models really write, and never raises."""

import json
import random
import time

import pytest

from slufit.data.example import Entity, Example
from slufit.scoring.parse import parse_prediction
from slufit.target import format_target

EMPTY = {"scenario": "", "action": "", "entities": []}
TUESDAY = {"scenario": "calendar", "action": "set", "entities": [{"type": "date", "filler": "tuesday"}]}


def ents(*pairs):
    return [{"type": t, "filler": f} for t, f in pairs]


@pytest.mark.parametrize("transcript_first", [False, True])
def test_round_trip_of_the_model_target(transcript_first):
    example = Example("slurp-1", "en-US", "Put meeting with Pawel for tomorrow", "calendar", "set", "calendar_set",
                      (Entity("event_name", "meeting"), Entity("person", "pawel"), Entity("date", "tomorrow")))
    prediction, ok = parse_prediction(format_target(example, transcript_first=transcript_first))
    assert ok
    expected = example.label()
    if transcript_first:
        expected["transcript"] = "put meeting with pawel for tomorrow"
    assert prediction == expected


@pytest.mark.parametrize("text", [
    '{"scenario": "calendar", "action": "set", "entities": [{"type": "date", "filler": "tuesday"}]}',
    'Sure! Here it is:\n```json\n{"scenario": "calendar", "action": "set", '
    '"entities": [{"type": "date", "filler": "tuesday"}]}\n```\nAnything else?',
    "{'scenario': 'calendar', 'action': 'set', 'entities': [{'type': 'date', 'filler': 'tuesday'}]}",
    '{"scenario": "calendar", "action": "set", "entities": [{"type": "date", "filler": "tuesday"},],}',
    '{"scenario": "calendar", "action": "set", "entities": [{"date": "tuesday"}]}',
    '{"scenario": "calendar", "action": "set", "entities": {"date": "tuesday"}}',
    '{"scenario": ["calendar"], "action": ["set"], "entities": [{"type": ["date"], "filler": ["tuesday"]}]}',
    '{"Scenario": " Calendar ", "ACTION": "set", "entities": [{"type": "date", "filler": "  TUESDAY "}]}',
    '{"intent": "calendar_set", "entities": [{"type": "date", "value": "Tuesday"}]}',
    '{"scenario": "calendar", "action": "set", "entities": [["date", "tuesday"]]}',
    '[{"scenario": "calendar", "action": "set", "entities": [{"type": "date", "filler": "tuesday"}]}]',
    '{"answer": {"scenario": "calendar", "action": "set", "entities": [{"type": "date", "filler": "tuesday"}]}}',
    "{'scenario': 'calendar', 'action': 'set', 'entities': [{'type': 'date', 'filler': 'tuesday'}], 'note': None}",
    '{"scenario": "calendar", "action": "set", "entities": [{"type": "date", "filler": "tuesday"}], "x": true}',
])
def test_tolerated_forms(text):
    assert parse_prediction(text) == (TUESDAY, True)


def test_leading_transcript_key_is_kept():
    text = '{"transcript": "Event reminder Mona  Tuesday", "scenario": "calendar", "action": "set", "entities": []}'
    prediction, ok = parse_prediction(text)
    assert ok and prediction == {"scenario": "calendar", "action": "set", "entities": [],
                                 "transcript": "Event reminder Mona Tuesday"}


def test_fillers_lowercased_and_spaces_collapsed():
    prediction, ok = parse_prediction('{"scenario": "alarm", "action": "set", "entities": '
                                      '[{"type": "time", "filler": "Ten\\tAM"}, {"type": "time", "filler": ["half", "Past"]}]}')
    assert ok and prediction["entities"] == ents(("time", "ten am"), ("time", "half past"))


def test_mapping_with_a_list_gives_one_entity_per_item():
    prediction, ok = parse_prediction('{"scenario": "calendar", "action": "set", "entities": {"date": ["monday", "friday"], "time": "noon"}}')
    assert ok and prediction["entities"] == ents(("date", "monday"), ("date", "friday"), ("time", "noon"))


def test_json_literal_words_inside_python_strings_are_kept():
    prediction, ok = parse_prediction("{'scenario': 'qa', 'action': 'factoid', 'entities': [{'type': 'place_name', 'filler': 'null island'}]}")
    assert ok and prediction["entities"] == ents(("place_name", "null island"))


def test_apostrophes_in_fillers():
    prediction, ok = parse_prediction("{'scenario': 'qa', 'action': 'factoid', 'entities': [{'type': 'person', 'filler': \"O'Neil\"}]}")
    assert ok and prediction["entities"] == ents(("person", "o'neil"))
    prediction, ok = parse_prediction("what's this: {\"scenario\": \"qa\", \"action\": \"factoid\", \"entities\": []}")
    assert ok and prediction["scenario"] == "qa"


def test_truncated_generation_is_closed():
    prediction, ok = parse_prediction('{"scenario": "calendar", "action": "set", "entities": [{"type": "date", "filler": "tues')
    assert ok and prediction["entities"] == ents(("date", "tues"))
    # Cut after a key: the dangling entity is dropped, the labels survive.
    prediction, ok = parse_prediction('{"scenario": "calendar", "action": "set", "entities": [{"type": "date", "filler": ')
    assert ok and prediction == {"scenario": "calendar", "action": "set", "entities": []}
    assert parse_prediction('{"scenario": "calendar", "action": "set"') == (
        {"scenario": "calendar", "action": "set", "entities": []}, True)


def test_entities_without_type_are_dropped_and_missing_entities_are_empty():
    prediction, ok = parse_prediction('{"scenario": "alarm", "action": "set", "entities": [{"type": "", "filler": "x"}, "junk", 3]}')
    assert ok and prediction["entities"] == []
    prediction, ok = parse_prediction('{"scenario": "alarm", "action": "set"}')
    assert ok and prediction == {"scenario": "alarm", "action": "set", "entities": []}


@pytest.mark.parametrize("text", [
    "", "   ", "no json here", "{}", '{"foo": "bar"}', "[1, 2, 3]", '"calendar_set"', "{{{{", "}}}{",
    None, 42, b'{"scenario": "x"}', ["scenario"],
])
def test_unparseable_gives_the_empty_prediction(text):
    assert parse_prediction(text) == (EMPTY, False)


def _valid(prediction):
    return (isinstance(prediction["scenario"], str) and isinstance(prediction["action"], str)
            and isinstance(prediction["entities"], list)
            and all(set(e) == {"type", "filler"} and isinstance(e["type"], str) and isinstance(e["filler"], str)
                    and e["filler"] == e["filler"].lower() and e["type"] for e in prediction["entities"]))


def test_fuzz_never_raises():
    rng = random.Random(1234)
    alphabet = list('{}[]"\':,\\ \n\tabcdeTFnul0123456789_') + ["true", "null", "scenario", "action", "entities",
                                                                 "type", "filler", "```", "json", "\u00e9", "\x00"]
    target = json.dumps({"transcript": "wake me up", **TUESDAY})
    start = time.perf_counter()
    ok_count = 0
    for i in range(3000):
        if i % 3 == 0:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        elif i % 3 == 1:  # a real target, cut and with characters changed, inserted or deleted
            chars = list(target[: rng.randint(0, len(target))])
            for _ in range(rng.randint(0, 6)):
                pos = rng.randint(0, len(chars))
                op = rng.random()
                if op < 0.4 and chars:
                    chars[min(pos, len(chars) - 1)] = rng.choice(alphabet)
                elif op < 0.7:
                    chars.insert(pos, rng.choice(alphabet))
                elif chars:
                    del chars[min(pos, len(chars) - 1)]
            text = "".join(chars)
        else:
            text = "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 300)))
        prediction, ok = parse_prediction(text)
        assert isinstance(ok, bool) and _valid(prediction), text
        if not ok:
            assert prediction == EMPTY, text
        ok_count += ok
    assert ok_count > 200  # many of the 1,000 cut or damaged targets are still read
    assert time.perf_counter() - start < 20


def test_huge_and_deeply_nested_input():
    assert parse_prediction("[" * 100_000) == (EMPTY, False)
    assert parse_prediction("{" * 5000 + "}" * 5000) == (EMPTY, False)
    assert parse_prediction('{"a": ' * 3000 + "1" + "}" * 3000) == (EMPTY, False)
    prediction, ok = parse_prediction("x" * 1_000_000 + json.dumps(TUESDAY))
    assert not ok  # beyond the bound on the work done per output
