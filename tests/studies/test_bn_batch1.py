import json
import math

from archkit.studies import run_study
from archkit.studies.bn_batch1 import VARIANTS


def test_quick_bn_batch1_study(tmp_path):
    results = run_study("bn-batch1", tmp_path, seeds=1, quick=True)
    assert set(VARIANTS) == {"bn-train", "bn-frozen", "bn-folded", "groupnorm", "selu"}
    for png in ("bn_batch1.png", "examples.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report.md").read_text()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["variants"]) == set(VARIANTS)
    for r in [saved["baseline"], *saved["variants"].values()]:
        assert r["label"] in report
        assert len(r["shifted_miou"]) == 1 and 0.0 <= r["shifted_miou_mean"] <= 1.0
        assert r["shifted_miou_std"] == 0.0 and not math.isnan(r["source_miou_mean"])
    assert saved["budget"]["finetune_batch"] == 1 and saved["budget"]["pretrain_batch"] == 32
    assert results["variants"]["bn-train"]["shifted_miou"] == saved["variants"]["bn-train"]["shifted_miou"]
