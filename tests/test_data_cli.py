"""`slufit data ...` end to end through the real CLI entry point."""

import json
import sys
import types

import numpy as np
import pytest
import soundfile as sf

from slufit.cli import main
from slufit.data.example import read_examples


def test_import_slurp_devel(shared_slurp, tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    assert main(["data", "import", "slurp", str(shared_slurp / "devel.jsonl"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"{out}: 2033 examples (2033 with audio)" in captured.out
    assert "warning: 8690 of 8690 audio file(s) missing" in captured.err
    examples = read_examples(out)  # valid canonical examples
    assert len(examples) == 2033
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl"]


def test_require_audio_fails_and_writes_nothing(shared_slurp, tmp_path, capsys):
    out = tmp_path / "x.jsonl"
    code = main(["data", "import", "slurp", str(shared_slurp / "devel.jsonl"), "--out", str(out), "--require-audio"])
    assert code == 2
    err = capsys.readouterr().err
    assert "8690 of 8690 audio file(s) missing" in err and "nothing written (--require-audio)" in err
    assert list(tmp_path.iterdir()) == []


def _massive(tmp_path, lines):
    src = tmp_path / "en-US.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return src


def _line(id_, partition, intent="alarm_set", annot="wake me at [time : five am]"):
    return json.dumps({"id": id_, "locale": "en-US", "partition": partition, "scenario": intent.split("_")[0],
                       "intent": intent, "utt": annot.replace("[time : ", "").replace("]", ""), "annot_utt": annot})


def test_bad_input_leaves_no_output_and_keeps_the_old_file(tmp_path, capsys):
    good = _massive(tmp_path, [_line("1", "train"), _line("2", "train")])
    out_dir = tmp_path / "out"
    out = out_dir / "train.jsonl"
    assert main(["data", "import", "massive", str(good), "--out", str(out)]) == 0
    before = out.read_bytes()
    bad = _massive(tmp_path, [_line("1", "train"), _line("2", "train"), '{"id": "3", "locale": "en-US"'])
    assert main(["data", "import", "massive", str(bad), "--out", str(out)]) == 2
    assert f"slufit data: error: {bad}:3: invalid JSON" in capsys.readouterr().err
    assert out.read_bytes() == before  # not clobbered
    fresh = tmp_path / "fresh.jsonl"
    assert main(["data", "import", "massive", str(bad), "--out", str(fresh)]) == 2
    assert not fresh.exists()
    assert sorted(p.name for p in out_dir.iterdir()) == ["train.jsonl"]  # no temporary file either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["en-US.jsonl", "out"]


def test_massive_partitions_to_folder_or_filtered_file(tmp_path, capsys):
    src = _massive(tmp_path, [_line("1", "train"), _line("2", "dev"), _line("3", "test"), _line("4", "train")])
    assert main(["data", "import", "massive", str(src), "--out", str(tmp_path / "all")]) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["dev.jsonl", "test.jsonl", "train.jsonl"]
    assert [e.id for e in read_examples(tmp_path / "all" / "train.jsonl")] == ["massive-en-US-1", "massive-en-US-4"]
    assert main(["data", "import", "massive", str(src), "--out", str(tmp_path / "one.jsonl")]) == 2
    assert "holds partitions dev, test, train; pass --partition NAME" in capsys.readouterr().err
    assert main(["data", "import", "massive", str(src), "--out", str(tmp_path / "one.jsonl"), "--partition", "dev"]) == 0
    assert [e.id for e in read_examples(tmp_path / "one.jsonl")] == ["massive-en-US-2"]


def test_duplicate_ids_are_refused(tmp_path, capsys):
    src = _massive(tmp_path, [_line("1", "train"), _line("1", "train")])
    assert main(["data", "import", "massive", str(src), "--out", str(tmp_path / "t.jsonl")]) == 2
    assert "duplicate id 'massive-en-US-1'" in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()


def test_stats_json_and_table(tmp_path, capsys):
    sf.write(tmp_path / "a.flac", np.full(48_000, 0.1, dtype=np.float32), 16_000)  # 3 s, no duration recorded
    rows = [
        {"id": "1", "locale": "en-US", "text": "wake me at five", "scenario": "alarm", "action": "set",
         "intent": "alarm_set", "entities": [{"type": "time", "filler": "five"}],
         "recordings": [{"path": "a.flac", "speaker": "x"}, {"path": "b.flac", "speaker": "y", "duration": 57.0},
                        {"path": "gone.flac", "speaker": "z"}]},
        {"id": "2", "locale": "fr-FR", "text": "réveille-moi", "scenario": "alarm", "action": "set",
         "intent": "alarm_set", "entities": [], "recordings": []},
        {"id": "3", "locale": "en-US", "text": "weather", "scenario": "weather", "action": "query",
         "intent": "weather_query", "entities": [{"type": "date", "filler": "today"}, {"type": "time", "filler": "now"}]},
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert main(["data", "stats", str(data), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats == {
        "file": str(data), "examples": 3, "with_audio": 1, "without_audio": 2, "recordings": 3,
        "audio_minutes": 1.0, "recordings_without_duration": 1, "entities": 3,
        "locales": {"en-US": 2, "fr-FR": 1}, "scenarios": {"alarm": 2, "weather": 1},
        "intents": {"alarm_set": 2, "weather_query": 1}, "entity_types": {"time": 2, "date": 1},
    }
    assert main(["data", "stats", str(data)]) == 0
    table = capsys.readouterr().out
    assert "audio minutes" in table and "alarm_set" in table and "66.7" in table


def test_stats_on_a_bad_file_names_the_line(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "1"}\n')
    assert main(["data", "stats", str(data)]) == 2
    assert f"{data}:1: missing field 'locale'" in capsys.readouterr().err


def test_budget_is_delegated_lazily(monkeypatch, capsys):
    seen = {}
    fake = types.ModuleType("slufit.data.budget")
    fake.add_arguments = lambda parser: (parser.add_argument("file"), parser.add_argument("--fraction", type=float))
    fake.run = lambda args: seen.setdefault("args", args) and 0
    monkeypatch.setitem(sys.modules, "slufit.data.budget", fake)
    assert main(["data", "budget", "train.jsonl", "--fraction", "0.05"]) == 0
    assert (seen["args"].file, seen["args"].fraction) == ("train.jsonl", 0.05)
    with pytest.raises(SystemExit):
        main(["data", "budget", "--help"])
    assert "usage: slufit data budget" in capsys.readouterr().out


def test_budget_missing_module_is_a_readable_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "slufit.data.budget", None)  # makes the import fail as if absent
    assert main(["data", "budget", "x.jsonl"]) == 2
    assert "`slufit data budget` is not available" in capsys.readouterr().err


def test_import_sample_draws_a_seeded_subset_in_file_order(shared_slurp, tmp_path, capsys):
    """600 SLURP test utterances drawn with seed 0 (the composed model's CPU test set, docs/composed.md)."""
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        assert main(["data", "import", "slurp", str(shared_slurp / "test.jsonl"), "--out", str(out),
                     "--sample", "600", "--seed", "0"]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    sampled = read_examples(tmp_path / "a.jsonl")
    assert len(sampled) == 600 and sampled[0].id == "slurp-9054"
    ids = [json.loads(line)["slurp_id"] for line in (shared_slurp / "test.jsonl").read_text().splitlines()]
    positions = [ids.index(int(e.id.split("-")[1])) for e in sampled]
    assert positions == sorted(positions)  # file order kept
