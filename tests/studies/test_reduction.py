import json

from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.studies.reduction import VARIANTS


def test_cli_quick_reduction_study(tmp_path):
    out = tmp_path / "study"
    result = CliRunner().invoke(cli, ["study", "reduction", "--quick", "--seeds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert (out / "reduction.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text())
    assert set(results["variants"]) == set(VARIANTS)
    for name, r in results["variants"].items():
        assert name in report
        assert len(r["accuracy"]) == 1 and 0.0 <= r["accuracy_mean"] <= 1.0
        assert r["fused_accuracy"] == r["accuracy"]  # folding is exact: same predictions
        assert r["max_rel_error"] < 1e-4
        assert r["latency_ms"] > 0 and r["latency_fused_ms"] > 0
        assert r["params_fused"] <= r["params"]
    v = results["variants"]
    assert v["conv-norm-act"]["ops_after"] == v["norm-act-conv"]["ops_after"]
    assert v["conv-norm-act"]["conv_relu_chain_after"] and v["norm-act-conv"]["conv_relu_chain_after"]
    assert v["conv-norm-act"]["bn_after"] == 0 and v["norm-act-conv"]["bn_after"] == 0
    assert v["norm-act-conv (reductions only)"]["bn_after"] > 0  # BN after a ReLU cannot be folded
