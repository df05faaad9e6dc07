"""The canonical example: round trips, and every validation error with FILE:LINE."""

import json

import pytest

from slufit.data.example import Entity, Example, Recording, read_examples, resolve_audio, write_examples
from slufit.errors import DataError

GOOD = {
    "id": "slurp-9054", "locale": "en-US", "text": "event reminder mona tuesday",
    "scenario": "calendar", "action": "set", "intent": "calendar_set",
    "entities": [{"type": "event_name", "filler": "mona"}, {"type": "date", "filler": "tuesday"}],
    "recordings": [{"path": "audio/slurp/audio-1497872916-headset.flac", "speaker": "UNK", "duration": 2.5}],
    "source": "slurp",
}


def test_dict_round_trip_is_exact():
    example = Example.from_dict(GOOD)
    assert example.to_dict() == GOOD
    assert example.entities == (Entity("event_name", "mona"), Entity("date", "tuesday"))
    assert example.label() == {"scenario": "calendar", "action": "set", "entities": GOOD["entities"]}


def test_file_round_trip_and_with_recordings(tmp_path):
    first = Example.from_dict(GOOD)
    second = Example.from_dict({**GOOD, "id": "b", "recordings": [], "entities": []}).with_recordings(
        [Recording("x.wav", "spk1", 1.0)])
    path = tmp_path / "sub" / "data.jsonl"
    assert write_examples(path, [first, second]) == 2
    assert read_examples(path) == [first, second]
    assert resolve_audio(second.recordings[0], path) == (tmp_path / "sub" / "x.wav").resolve()
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["data.jsonl"]  # no temporary file left


def _line(**changes):
    obj = {**GOOD, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not ...})


# (line 2 of the file, the message expected after "FILE:2: ")
BAD_LINES = [
    ('{"id": "x", ', "invalid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    (_line(intent=...), "missing field 'intent'"),
    (_line(text=5), "field 'text' must be a string, got int"),
    (_line(text="  "), "field 'text' is empty"),
    (_line(locale="english"), "field 'locale' must look like 'en-US'"),
    (_line(intent="calendar_query"), "field 'intent' is 'calendar_query' but scenario_action is 'calendar_set'"),
    (_line(entities=[{"type": "date", "filler": "Tuesday"}]), "entities[0].filler must be lowercase"),
    (_line(entities=[{"type": "date", "filler": " "}]), "entities[0].filler is empty"),
    (_line(entities=[{"type": "", "filler": "x"}]), "entities[0].type must be a non-empty string"),
    (_line(entities=[{"type": "date"}]), "entities[0] must be an object with exactly 'type' and 'filler'"),
    (_line(entities=[{"type": "date", "filler": 3}]), "entities[0].filler must be a string, got int"),
    (_line(entities="date"), "field 'entities' must be a list, got str"),
    (_line(recordings=[{"path": ""}]), "recordings[0].path must be a non-empty string"),
    (_line(recordings=[{"path": "a.wav", "duration": -1}]), "recordings[0].duration must be a non-negative number"),
    (_line(recordings=[{"path": "a.wav", "duration": float("nan")}]), "recordings[0].duration must be a non-negative"),
    (_line(recordings=[{"path": "a.wav", "file": "a"}]), "recordings[0] has unknown field(s) file"),
    (_line(source=1), "field 'source' must be a string"),
    (_line(slot="x"), "unknown field(s) slot"),
    (_line(), "duplicate id 'slurp-9054' (first on line 1)"),
]


@pytest.mark.parametrize("bad, reason", BAD_LINES, ids=[reason[:40] for _, reason in BAD_LINES])
def test_bad_line_names_file_and_line(tmp_path, bad, reason):
    path = tmp_path / "bad.jsonl"
    path.write_text(_line() + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_examples(path)
    assert str(info.value).startswith(f"{path}:2: ")
    assert reason in str(info.value)


def test_not_utf8_and_missing_file(tmp_path):
    path = tmp_path / "latin1.jsonl"
    latin1 = json.dumps({**GOOD, "id": "b", "text": "caf\xe9"}, ensure_ascii=False).encode("latin-1")
    path.write_bytes(_line().encode() + b"\n" + latin1 + b"\n")
    with pytest.raises(DataError, match=r"latin1\.jsonl:2: not UTF-8 text"):
        read_examples(path)
    with pytest.raises(DataError, match="no such file"):
        read_examples(tmp_path / "absent.jsonl")


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "data.jsonl"
    write_examples(path, [Example.from_dict(GOOD)])
    before = path.read_text()

    def broken():
        yield Example.from_dict({**GOOD, "id": "b"})
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_examples(path, broken())
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]
