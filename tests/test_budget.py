"""Speech budgets: nested subsets, exact counts, stratification, manifests, CLI and its errors."""

import json
from collections import Counter

import pytest

from slufit.cli import main
from slufit.data import budget as budget_cli
from slufit.data.budget import draw_budget, read_budget, write_budget
from slufit.data.example import Example, Recording, write_examples
from slufit.errors import DataError, SlufitError

FRACTIONS = (0.02, 0.05, 0.10, 0.25, 1.0)


def _examples(n=2000):
    # 40 intents of very different sizes (intent k has about k+1 shares).
    weights = [k + 1 for k in range(40)]
    intents = [k for k, w in enumerate(weights) for _ in range(w)]
    out = []
    for i in range(n):
        k = intents[(i * 7919) % len(intents)]
        out.append(Example(f"ex-{i:05d}", "en-US", f"utterance {i}", f"s{k}", "do", f"s{k}_do",
                           recordings=(Recording(f"audio/{i}.flac", "spk", 2.0),)))
    return out


@pytest.mark.parametrize("strategy", ["random", "stratified"])
@pytest.mark.parametrize("seed", [0, 1])
def test_budgets_are_nested(strategy, seed):
    examples = _examples()
    sets = [set(draw_budget(examples, fraction=f, strategy=strategy, seed=seed)["ids"]) for f in FRACTIONS]
    assert [len(s) for s in sets] == [40, 100, 200, 500, 2000]
    for small, big in zip(sets, sets[1:]):
        assert small < big
    other = draw_budget(examples, fraction=0.05, strategy=strategy, seed=seed + 10)["ids"]
    assert set(other) != sets[1]


def test_count_is_exact():
    examples = _examples()
    for strategy in ("random", "stratified"):
        manifest = draw_budget(examples, count=115, strategy=strategy, seed=3)
        assert manifest["count"] == 115 and len(manifest["ids"]) == 115 == len(set(manifest["ids"]))
        assert set(manifest["ids"]) <= {e.id for e in examples}


def test_stratified_covers_every_intent_and_is_proportional():
    examples = _examples()
    intents = {e.id: e.intent for e in examples}
    n_intents = len(set(intents.values()))
    small = draw_budget(examples, fraction=0.02, strategy="stratified", seed=0)["ids"]  # 40 = n_intents
    assert len({intents[i] for i in small}) == n_intents
    tiny = draw_budget(examples, count=10, strategy="stratified", seed=0)["ids"]
    assert len({intents[i] for i in tiny}) == 10  # one per intent as far as the budget allows
    # Beyond one per intent, larger intents get more: counts follow intent sizes.
    mid = Counter(intents[i] for i in draw_budget(examples, fraction=0.25, strategy="stratified")["ids"])
    full = Counter(intents.values())
    for intent, n in full.items():
        assert abs(mid[intent] - n / 4) <= 2, (intent, mid[intent], n)
    # Random sampling misses intents at 2 %.
    rand = draw_budget(examples, fraction=0.02, strategy="random", seed=0)["ids"]
    assert len({intents[i] for i in rand}) < n_intents


def test_manifest_round_trip(tmp_path):
    manifest = draw_budget(_examples(100), fraction=0.1, strategy="random", seed=5)
    assert set(manifest) == {"seed", "strategy", "fraction", "count", "ids"}
    write_budget(tmp_path / "b.json", manifest)
    assert read_budget(tmp_path / "b.json") == manifest


def test_bad_arguments():
    examples = _examples(50)
    with pytest.raises(SlufitError, match="fraction must be between 0 and 1"):
        draw_budget(examples, fraction=1.5)
    with pytest.raises(SlufitError, match="count must be between 0 and 50"):
        draw_budget(examples, count=51)
    with pytest.raises(SlufitError, match="exactly one"):
        draw_budget(examples, fraction=0.1, count=3)
    with pytest.raises(SlufitError, match="unknown strategy"):
        draw_budget(examples, count=3, strategy="greedy")


def test_bad_manifest(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"seed": 0, "strategy": "random", "fraction": 0.1, "count": 1}')
    with pytest.raises(DataError, match="m.json: missing field.*ids"):
        read_budget(path)
    path.write_text('{"seed": 0, "strategy": "random", "fraction": 0.1, "count": 1, "ids": [1]}')
    with pytest.raises(DataError, match="'ids' must be a list of strings"):
        read_budget(path)
    path.write_text("not json")
    with pytest.raises(DataError, match="m.json: not a JSON"):
        read_budget(path)


def _run(argv):
    import argparse
    parser = argparse.ArgumentParser()
    budget_cli.add_arguments(parser)
    args = parser.parse_args(argv)
    return budget_cli.run(args)


def test_cli_writes_manifest_and_reports_minutes(tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    write_examples(data, _examples(400))
    out = tmp_path / "b.json"
    assert _run(["--data", str(data), "--count", "115", "--strategy", "stratified", "--seed", "2",
                 "--out", str(out)]) == 0
    manifest = json.loads(out.read_text())
    assert manifest["count"] == 115 and len(manifest["ids"]) == 115 and manifest["seed"] == 2
    printed = capsys.readouterr().out
    assert "115 of 400 utterances" in printed and "3.8 audio minutes in 115 recordings" in printed  # 115 x 2 s
    assert _run(["--data", str(data), "--fraction", "5", "--out", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["count"] == 20  # `5` read as 5 %
    assert _run(["--data", str(data), "--fraction", "10%", "--out", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["count"] == 40
    assert _run(["--data", str(data), "--fraction", "1", "--out", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["count"] == 400


def test_cli_error_keeps_earlier_manifest(tmp_path):
    data = tmp_path / "train.jsonl"
    write_examples(data, _examples(30))
    out = tmp_path / "b.json"
    assert _run(["--data", str(data), "--count", "5", "--out", str(out)]) == 0
    before = out.read_bytes()
    with pytest.raises(SlufitError, match="count must be between 0 and 30"):
        _run(["--data", str(data), "--count", "31", "--out", str(out)])
    assert out.read_bytes() == before
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SlufitError, match="cannot write here"):
        _run(["--data", str(data), "--count", "5", "--out", str(blocker / "b.json")])


def test_cli_through_slufit_data(tmp_path):
    """The real entry point: `slufit data budget` (wired in slufit.data.cli)."""
    data = tmp_path / "train.jsonl"
    write_examples(data, _examples(100))
    assert main(["data", "budget", "--data", str(data), "--count", "7", "--out", str(tmp_path / "b.json")]) == 0
    assert len(read_budget(tmp_path / "b.json")["ids"]) == 7
