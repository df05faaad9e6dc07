"""Importers: SLURP on the real devel file, MASSIVE annotation parsing, Speech-MASSIVE audio, generic JSONL/CSV."""

import argparse
import io
import json

import numpy as np
import pytest
import soundfile as sf

from slufit.data.example import read_examples, resolve_audio
from slufit.data.importers import IMPORTERS, generic, massive, slurp, speech_massive
from slufit.data.importers.common import parse_annotation
from slufit.errors import DataError


def _args(**kw):
    return argparse.Namespace(**{"audio_root": None, "partition": None, **kw})


def _official_gold(record):
    """The SLURP scorer's gold entities (scripts/evaluation/util.py, release2prediction), written out here
    independently of the importer: lowercased token surfaces of the span, joined by one space."""
    return [{"type": e["type"], "filler": " ".join(record["tokens"][i]["surface"].lower() for i in e["span"])}
            for e in record["entities"]]


def test_registry_lists_every_format():
    assert sorted(IMPORTERS) == ["csv", "jsonl", "massive", "slurp", "speech-massive"]


def test_slurp_devel(shared_slurp, tmp_path):
    src = shared_slurp / "devel.jsonl"
    imported = slurp.convert(src, _args(), tmp_path)
    examples = imported.partitions[""]
    records = [json.loads(line) for line in src.read_text().splitlines()]
    assert len(examples) == 2033
    assert len({e.intent for e in examples}) == 59  # scenario_action labels, as the scorer counts them
    # The release's raw `intent` field has 71 values: 12 of them are bare actions ('query', 'music', ...).
    assert len({r["intent"] for r in records}) == 71
    assert imported.notes == ["30 line(s) have an 'intent' field that is not scenario_action; "
                              "used scenario_action, as the official scorer does"]
    assert len({ent.type for e in examples for ent in e.entities}) == 53
    assert imported.recordings == 8690 and len(imported.missing_audio) == 8690  # no audio here
    for example, record in zip(examples, records):
        assert example.id == f"slurp-{record['slurp_id']}"
        assert example.text == record["sentence"] and example.locale == "en-US" and example.source == "slurp"
        assert (example.scenario, example.action) == (record["scenario"], record["action"])
        assert [e.to_dict() for e in example.entities] == _official_gold(record)
        # The scorer keys audio predictions by SLURP file name: it stays the last path component.
        assert [r.path.rsplit("/", 1)[-1] for r in example.recordings] == [r["file"] for r in record["recordings"]]
    by_id = {e.id: e for e in examples}
    assert by_id["slurp-13804"].label()["entities"] == [
        {"type": "currency_name", "filler": "american dollar"}, {"type": "currency_name", "filler": "japanese yen"}]
    # Token surfaces, not the bracket annotation: "domino's" is two tokens, so the gold filler is "domino 's".
    assert [e.filler for e in by_id["slurp-6008"].entities] == ["domino 's"]


def test_slurp_audio_root_resolves_and_reports_missing(tmp_path):
    src = tmp_path / "mini.jsonl"
    tokens = [{"surface": w} for w in ["wake", "me", "up", "at", "Five"]]
    src.write_text(json.dumps({
        "slurp_id": 7, "sentence": "wake me up at Five", "scenario": "alarm", "action": "set", "intent": "alarm_set",
        "tokens": tokens, "entities": [{"span": [4], "type": "time"}],
        "recordings": [{"file": "a-1.flac"}, {"file": "a-2.flac"}]}) + "\n")
    audio = tmp_path / "audio" / "slurp_real"
    audio.mkdir(parents=True)
    sf.write(audio / "a-1.flac", np.full(8000, 0.1, dtype=np.float32), 16000)
    out_dir = tmp_path / "out"
    imported = slurp.convert(src, _args(audio_root=[audio]), out_dir)
    (example,) = imported.partitions[""]
    assert example.entities[0].filler == "five"
    assert [r.path for r in example.recordings] == ["../audio/slurp_real/a-1.flac", "../audio/slurp_real/a-2.flac"]
    assert example.recordings[0].duration == 0.5 and example.recordings[1].duration is None
    assert resolve_audio(example.recordings[0], out_dir / "x.jsonl").resolve() == (audio / "a-1.flac").resolve()
    assert imported.missing_audio == [str((audio / "a-2.flac").resolve())]


def test_slurp_bad_span_names_the_line(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"slurp_id": 1, "sentence": "hi", "scenario": "general", "action": "greet",
                               "tokens": [{"surface": "hi"}], "entities": [{"span": [3], "type": "x"}]}) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:1: bad entity span"):
        slurp.convert(src, _args(), tmp_path)


@pytest.mark.parametrize("annotated, text, entities", [
    ("wake me up at [time : five am]", "wake me up at five am", [("time", "five am")]),
    ("[date : today][time : Five PM] please", "todayFive PM please", [("date", "today"), ("time", "five pm")]),
    ("[date : today] [time : five pm]", "today five pm", [("date", "today"), ("time", "five pm")]),
    ("play [playlist : my [person : mum 's]  songs ]", "play my mum 's songs",
     [("playlist", "my mum 's songs"), ("person", "mum 's")]),
    ("[place_name : 東京]の天気", "東京の天気", [("place_name", "東京")]),
    ("no entities here", "no entities here", []),
])
def test_parse_annotation(annotated, text, entities):
    assert parse_annotation(annotated) == (text, [{"type": t, "filler": f} for t, f in entities])


@pytest.mark.parametrize("annotated, message", [
    ("[time five am]", "'[' at column 1 is not followed by 'type :'"),
    ("five am]", "']' at column 8 closes no span"),
    ("[time : five am", "span 'time' is never closed"),
    ("[time : ]", "span 'time' ending at column 9 is empty"),
])
def test_parse_annotation_errors(annotated, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_annotation(annotated)


def _massive_line(id_, partition, annot, intent="alarm_set", scenario="alarm", locale="fr-FR"):
    utt = annot.replace("[time : ", "").replace("[date : ", "").replace("[music_genre : ", "").replace("]", "")
    return json.dumps({"id": id_, "locale": locale, "partition": partition, "scenario": scenario, "intent": intent,
                       "utt": utt, "annot_utt": annot}, ensure_ascii=False)


def test_massive_partitions_and_labels(tmp_path):
    src = tmp_path / "fr-FR.jsonl"
    src.write_text("\n".join([
        _massive_line("0", "train", "réveille-moi à [time : cinq heures] [date : Demain]"),
        _massive_line("1", "test", "quelle heure est-il", intent="datetime_query", scenario="datetime"),
        _massive_line("2", "train", "mets [music_genre : du jazz]", intent="play_music", scenario="play"),
    ]) + "\n", encoding="utf-8")
    imported = massive.convert(src, _args(), tmp_path)
    assert {k: [e.id for e in v] for k, v in imported.partitions.items()} == {
        "train": ["massive-fr-FR-0", "massive-fr-FR-2"], "test": ["massive-fr-FR-1"]}
    first = imported.partitions["train"][0]
    assert (first.scenario, first.action, first.intent, first.source) == ("alarm", "set", "alarm_set", "massive")
    assert [e.to_dict() for e in first.entities] == [{"type": "time", "filler": "cinq heures"},
                                                     {"type": "date", "filler": "demain"}]
    assert first.text == "réveille-moi à cinq heures Demain"
    only_test = massive.convert(src, _args(partition="test"), tmp_path)
    assert list(only_test.partitions) == ["test"]
    with pytest.raises(DataError, match="no line has partition 'dev'"):
        massive.convert(src, _args(partition="dev"), tmp_path)


@pytest.mark.parametrize("line, message", [
    (_massive_line("0", "train", "x", intent="set_alarm"), "intent 'set_alarm' does not start with scenario 'alarm'"),
    (_massive_line("0", "train", "[time : five"), "annot_utt: span 'time' is never closed"),
    (json.dumps({"id": "0", "locale": "fr-FR", "scenario": "alarm", "intent": "alarm_set", "utt": "x"}),
     "missing field 'annot_utt'"),
])
def test_massive_errors_name_file_and_line(tmp_path, line, message):
    src = tmp_path / "m.jsonl"
    src.write_text(_massive_line("9", "train", "ok") + "\n" + line + "\n")
    with pytest.raises(DataError) as info:
        massive.convert(src, _args(), tmp_path)
    assert str(info.value).startswith(f"{src}:2: ") and message in str(info.value)


def _generic_args(fmt, **kw):
    parser = argparse.ArgumentParser()
    generic.add_arguments(parser)
    args = parser.parse_args([])
    for key, value in {"format": fmt, "audio_root": None, **kw}.items():
        setattr(args, key, value)
    return args


def test_generic_jsonl_with_custom_fields_and_audio(tmp_path):
    sf.write(tmp_path / "u1.wav", np.full(4000, 0.1, dtype=np.float32), 16000)
    src = tmp_path / "mine.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"utterance": "turn the lights off", "label": "iot_hue_lightoff", "wav": "u1.wav", "who": "ann",
         "slots": [{"type": "house_place", "filler": "Living  Room"}]},
        {"utterance": "hello", "label": "general_greet"},
    ]) + "\n")
    args = _generic_args("jsonl", text_field="utterance", intent_field="label", audio_field="wav",
                         speaker_field="who", entities_field="slots", locale="de-DE")
    examples = generic.convert(src, args, tmp_path / "out").partitions[""]
    first, second = examples
    assert (first.id, first.locale, first.scenario, first.action, first.source) == (
        "mine-1", "de-DE", "iot", "hue_lightoff", "mine")
    assert first.entities[0].filler == "living room"
    assert [r.to_dict() for r in first.recordings] == [{"path": "../u1.wav", "speaker": "ann", "duration": 0.25}]
    assert second.id == "mine-2" and second.recordings == ()


def test_generic_csv_scenario_action_and_annotation(tmp_path):
    src = tmp_path / "mine.csv"
    src.write_text("id,text,scenario,action,annot\n"
                   "a,set an alarm for six,alarm,set,set an alarm for [time : six]\n"
                   'b,"hi, there",general,greet,\n', encoding="utf-8")
    args = _generic_args("csv", annotation_field="annot")
    a, b = generic.convert(src, args, tmp_path).partitions[""]
    assert (a.id, a.intent, [e.to_dict() for e in a.entities]) == ("a", "alarm_set", [{"type": "time", "filler": "six"}])
    assert (b.text, b.entities) == ("hi, there", ())


@pytest.mark.parametrize("row, message", [
    ("c,hello,,,", "mine.csv:2: missing field 'intent' (or 'scenario' and 'action'"),
    ("c,hello,alarm,set,extra,cell", "mine.csv:2: more cells than header columns"),
    ("c,,alarm,set,", "mine.csv:2: missing field 'text'"),
])
def test_generic_csv_errors(tmp_path, row, message):
    src = tmp_path / "mine.csv"
    src.write_text("id,text,scenario,action,intent\n" + row + "\n")
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        generic.convert(src, _generic_args("csv"), tmp_path)


def test_generic_intent_must_agree_with_scenario_action(tmp_path):
    src = tmp_path / "mine.jsonl"
    src.write_text(json.dumps({"text": "x", "scenario": "alarm", "action": "set", "intent": "alarm_query"}) + "\n")
    with pytest.raises(DataError, match=r"mine\.jsonl:1: field 'intent' is 'alarm_query' but scenario_action"):
        generic.convert(src, _generic_args("jsonl"), tmp_path)


def _wav_bytes(seconds, rate, amplitude=0.3):
    buffer = io.BytesIO()
    sf.write(buffer, (amplitude * np.sin(np.arange(int(seconds * rate)) / 5)).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


def _speech_massive_dataset():
    """A tiny Speech-MASSIVE look-alike: integer class columns with *_str twins, 8 kHz audio bytes."""
    import datasets

    scenario = datasets.ClassLabel(names=["alarm", "weather"])
    rows = {
        "id": ["10", "10", "11"], "locale": ["fr-FR"] * 3, "partition": ["train", "train", "train"],
        "scenario": [0, 0, 1], "scenario_str": ["alarm", "alarm", "weather"],
        "intent_idx": [0, 0, 1], "intent_str": ["alarm_set", "alarm_set", "weather_query"],
        "utt": ["réveille-moi à six heures", "réveille-moi à six heures", "quel temps fait-il"],
        "annot_utt": ["réveille-moi à [time : six heures]", "réveille-moi à [time : six heures]",
                      "quel temps fait-il"],
        "speaker_id": ["spk1", "spk2", "spk1"], "path": ["a/10-1.wav", "a/10-2.wav", "a/11-1.wav"],
        # Built as plain structs and cast: encoding an Audio column directly would need torchcodec.
        "audio": [{"bytes": _wav_bytes(0.5, 8000), "path": "10-1.wav"}, {"bytes": _wav_bytes(0.25, 8000),
                  "path": "10-2.wav"}, {"bytes": _wav_bytes(1.0, 8000), "path": "11-1.wav"}],
    }
    dataset = datasets.Dataset.from_dict(rows).cast_column("scenario", scenario)
    return dataset.cast_column("audio", datasets.Audio(sampling_rate=16000))


def test_speech_massive_from_disk_writes_16k_audio_once(tmp_path):
    import datasets

    src = tmp_path / "speech_massive"
    datasets.DatasetDict({"train_115": _speech_massive_dataset()}).save_to_disk(str(src))
    out_dir = tmp_path / "out"
    imported = speech_massive.convert(src, _args(), out_dir)
    assert imported.recordings == 3 and imported.missing_audio == []
    first, second = imported.partitions["train_115"]
    assert (first.id, first.intent, first.source) == ("massive-fr-FR-10", "alarm_set", "speech-massive")
    assert [e.to_dict() for e in first.entities] == [{"type": "time", "filler": "six heures"}]
    assert [(r.path, r.speaker, r.duration) for r in first.recordings] == [
        ("audio/speech-massive/fr-FR/10-1.flac", "spk1", 0.5), ("audio/speech-massive/fr-FR/10-2.flac", "spk2", 0.25)]
    assert second.scenario == "weather" and second.recordings[0].duration == 1.0
    written = out_dir / first.recordings[0].path
    info = sf.info(str(written))
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 8000)
    mtime = written.stat().st_mtime_ns
    speech_massive.convert(src, _args(), out_dir)
    assert written.stat().st_mtime_ns == mtime  # written once: the rerun reused it


def test_speech_massive_from_parquet_with_partition_filter(tmp_path):
    src = tmp_path / "fr-FR"
    src.mkdir()
    _speech_massive_dataset().to_parquet(str(src / "train_115-00000-of-00001.parquet"))
    imported = speech_massive.convert(src, _args(partition="train_115"), tmp_path / "out")
    assert [e.id for e in imported.partitions["train_115"]] == ["massive-fr-FR-10", "massive-fr-FR-11"]
    with pytest.raises(DataError, match="no row has partition 'test'"):
        speech_massive.convert(src, _args(partition="test"), tmp_path / "out")


def test_speech_massive_bad_audio_is_reported_not_fatal(tmp_path):
    import datasets

    rows = _speech_massive_dataset().cast_column("audio", datasets.Audio(decode=False)).to_dict()
    rows["audio"][2] = {"bytes": b"not audio", "path": "11-1.wav"}
    src = tmp_path / "sm"
    datasets.Dataset.from_dict(rows).save_to_disk(str(src))  # a plain Dataset: partition from the rows
    imported = speech_massive.convert(src, _args(), tmp_path / "out")
    assert len(imported.missing_audio) == 1 and "audio 11-1: cannot decode audio" in imported.missing_audio[0]
    first, second = imported.partitions["train"]
    assert len(first.recordings) == 2 and second.recordings == ()
