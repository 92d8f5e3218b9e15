import json

from archkit.studies import STUDIES, run_study


def test_decomposeme_quick(tmp_path):
    assert "decomposeme" in STUDIES
    res = run_study("decomposeme", tmp_path, seeds=1, quick=True)
    assert (tmp_path / "report.md").exists() and (tmp_path / "decomposeme.png").stat().st_size > 1000
    assert json.loads((tmp_path / "results.json").read_text())["variants"].keys() == res["variants"].keys()
    dense, dec = res["variants"]["3x3 conv (dense)"], res["variants"]["DecomposeMe, params matched"]
    assert dec["params"] <= dense["params"]  # matched or lower
    assert 0.0 <= dec["accuracy_mean"] <= 1.0 and dec["latency_ms"] > 0
    assert "DecomposeMe" in (tmp_path / "report.md").read_text()


def test_compress_quick(tmp_path):
    assert "compress" in STUDIES
    res = run_study("compress", tmp_path, seeds=1, quick=True)
    assert (tmp_path / "report.md").exists() and (tmp_path / "compress.png").stat().st_size > 1000
    base = res["base"]
    for label, r in res["conversions"].items():
        assert len(r["accuracy"]) == len(r["finetuned_accuracy"]) == 1
        if r["ranks"]:  # something was replaced: it must be cheaper than the trained model
            assert r["macs"] < base["macs"], label
    assert {"decompose (fine-tuned)", "lowrank (as converted)"} <= set(res["within_1_point"])
    assert "within 1 point" in (tmp_path / "report.md").read_text()
