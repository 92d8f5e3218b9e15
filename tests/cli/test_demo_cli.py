import json

import pytest
from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.train import read_jsonl


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result = CliRunner().invoke(cli, ["demo", "--quick", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_demo_quick_writes_pictures_metrics_and_report(demo_run):
    out, output = demo_run
    for name in ("recon.png", "samples.png", "metrics.json", "report.md", "codes/meta.json", "codes/train_codes_1.npy"):
        assert (out / name).is_file(), name
    assert (out / "samples.png").stat().st_size > 1000
    m = json.loads((out / "metrics.json").read_text())
    rows = m["evaluation"]["rows"]
    assert set(rows) == {"prior_samples", "real_images", "uniform_codes"}
    for r in rows.values():
        assert 0 <= r["class_agreement"] <= 1 and 0 <= r["cas"] <= 1 and r["frechet_distance"] >= 0
    assert [p["level"] for p in m["evaluation"]["priors"]] == [0, 1]
    assert set(m["stage_seconds"]) == {"vqvae", "encode", "prior-top", "prior-bottom", "sample", "evaluate"}
    report = (out / "report.md").read_text()
    assert "![samples](samples.png)" in report and "![reconstructions](recon.png)" in report
    assert "class agreement" in report and "CAS" in report
    assert "class agreement" in output


def test_demo_resumes_without_retraining(demo_run):
    out, _ = demo_run
    before = [len(read_jsonl(out / f"prior-{l}" / "metrics.jsonl")) for l in (0, 1)]
    result = CliRunner().invoke(cli, ["demo", "--quick", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [len(read_jsonl(out / f"prior-{l}" / "metrics.jsonl")) for l in (0, 1)] == before


def test_sample_and_evaluate_commands(demo_run, tmp_path):
    out, _ = demo_run
    png = tmp_path / "s.png"
    result = CliRunner().invoke(
        cli,
        [
            "sample",
            "--run",
            str(out),
            "--class",
            "3",
            "--class",
            "7",
            "--n",
            "4",
            "--temperature",
            "0.8",
            "--out",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    assert png.is_file() and "8 samples, 2 rows" in result.output
    ev = tmp_path / "ev.json"
    result = CliRunner().invoke(
        cli, ["evaluate", "--run", str(out), "--per-class", "2", "--classifier-epochs", "1", "--out", str(ev)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(ev.read_text())["per_class"] == 2
    result = CliRunner().invoke(
        cli, ["prior", "train", "--run", str(out), "--level", "bottom", "--steps", "30", "--resume", "--quiet"]
    )
    assert result.exit_code == 0 and "step 30" in result.output, result.output


def test_sample_with_rejection_end_to_end(demo_run, tmp_path):
    out, _ = demo_run
    png = tmp_path / "r.png"
    result = CliRunner().invoke(
        cli,
        [
            "sample",
            "--run",
            str(out),
            "--class",
            "3",
            "--class",
            "7",
            "--n",
            "3",
            "--reject-with",
            "classifier",
            "--keep",
            "0.5",
            "--classifier-epochs",
            "2",  # not the demo's cached 1-epoch classifier: it trains one, and says so first
            "--out",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.index("training the evaluation classifier") < result.output.index("wrote")
    assert png.is_file() and "6 samples, 2 rows" in result.output and "kept 6 of 12 draws" in result.output
    ev = tmp_path / "ev.json"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--run",
            str(out),
            "--per-class",
            "2",
            "--classifier-epochs",
            "1",
            "--reject-keep",
            "0.5",
            "--out",
            str(ev),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(ev.read_text())
    assert data["rejection"]["drawn"] == 40 and data["rejection"]["kept"] == 20
    assert "prior_samples_rejected" in data["rows"]


def test_cli_errors_are_clean(demo_run, tmp_path):
    out, _ = demo_run
    runner = CliRunner()
    r = runner.invoke(cli, ["sample", "--run", str(out), "--class", "12", "--out", str(tmp_path / "x.png")])
    assert r.exit_code != 0 and "--class: expected a class in [0, 10)" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(cli, ["sample", "--run", str(empty), "--out", str(tmp_path / "x.png")])
    assert r.exit_code != 0 and "Error:" in r.output and "archkit prior train" in r.output
    r = runner.invoke(cli, ["evaluate", "--run", str(empty)])
    assert r.exit_code != 0 and "no trained VQ-VAE" in r.output
    r = runner.invoke(cli, ["prior", "train", "--run", str(empty)])
    assert r.exit_code != 0 and "archkit vqvae encode" in r.output
    r = runner.invoke(cli, ["prior", "train", "--run", str(out), "--level", "5", "--resume"])
    assert r.exit_code != 0 and "level" in r.output


@pytest.mark.slow
def test_full_demo_meets_quality_targets(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "metrics.json").read_text())["evaluation"]["rows"]
    assert rows["prior_samples"]["class_agreement"] >= 0.80
    assert rows["prior_samples"]["cas"] >= 0.70
    assert rows["uniform_codes"]["class_agreement"] < 0.3 and rows["uniform_codes"]["cas"] < 0.3


def test_plan_names_every_stage_and_the_eta_follows_the_measured_speed(demo_run):
    from archkit.cli.demo import DemoConfig, demo_plan, eta_seconds

    assert demo_run[1].startswith(demo_plan(DemoConfig.quick()))  # printed before anything runs
    assert "encode train" not in demo_run[1]  # --quiet: no progress bars from any stage
    cfg = DemoConfig()
    plan = demo_plan(cfg)
    assert all(f"  {k}. " in plan for k in range(1, 7)) and f"({cfg.vqvae_steps} steps" in plan
    assert eta_seconds(cfg, 0.2) == pytest.approx(2 * eta_seconds(cfg, 0.1))
    # the reference run the stage costs come from: 373 s for 1,000 VQ-VAE steps, then 2,305 s for the rest
    assert eta_seconds(cfg, 0.373) == pytest.approx(2305, rel=0.01)


def test_whole_demo_eta_is_printed_once_after_the_first_steps():
    from archkit.cli.demo import ETA_MIN_STEPS, DemoConfig, eta_printer, eta_seconds

    cfg, lines = DemoConfig(), []
    on_step = eta_printer(cfg, steps_before=10, write=lines.append)  # a resumed run: counts this call's steps
    for step in range(11, 11 + 3 * ETA_MIN_STEPS):
        on_step(step, 0.373 * (step - 10))
    assert len(lines) == 1 and f"after {ETA_MIN_STEPS} steps" in lines[0]
    expected = eta_seconds(cfg, 0.373, cfg.vqvae_steps - 10 - ETA_MIN_STEPS) / 60
    assert f"about {expected:.0f} min more" in lines[0]
    assert 40 < expected < 50  # 950 more VQ-VAE steps at the reference speed, then the 38 min of stages 2-6
