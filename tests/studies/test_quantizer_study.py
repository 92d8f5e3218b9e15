"""Study `quantizers`: the verdict rule, the report, and (slow) a smoke run end to end."""

import pytest

from archkit.studies.quantizers import QuantizerStudySize
from archkit.studies.quantizers_report import report_body, summarize, verdict


def _row(q, seed, psnr, usage, bits, budget="steps"):
    return {
        "quantizer": q,
        "seed": seed,
        "budget": budget,
        "psnr": psnr,
        "usage": usage,
        "perplexity": [10.0, 20.0],
        "codes": [512, 512],
        "prior_bits_per_code": bits,
        "frechet_distance": 5.0,
        "images_per_cpu_s": 10.0,
        "images_per_s": 8.0,
        "steps": 100,
        "curve": [],
    }


def test_a_quantizer_wins_on_psnr_or_on_full_usage_with_a_lower_prior_nll():
    rows = []
    for seed in range(2):
        rows += [
            _row("ema", seed, 25.0 + seed * 0.02, [0.9, 0.95], 6.0),
            _row("fsq", seed, 25.01 + seed * 0.02, [1.0, 0.995], 5.5),  # same PSNR, full usage, lower NLL
            _row("rotation", seed, 24.0, [1.0, 1.0], 5.0),
        ]  # 1 dB worse: no win whatever the usage
    for r in list(rows):
        rows.append({**r, "budget": "cpu_time"})
    v = verdict(summarize(rows, ("ema", "fsq", "rotation")))
    assert v["fsq"]["wins"] and v["fsq"]["all_levels_99pct"] and v["fsq"]["lower_prior_nll"]
    assert not v["rotation"]["wins"]
    rows = [{**r, "psnr": 26.0} if r["quantizer"] == "rotation" else r for r in rows]
    assert verdict(summarize(rows, ("ema", "fsq", "rotation")))["rotation"]["wins"]  # +1 dB at equal time


def test_report_states_what_ran():
    rows = [_row("ema", 0, 25.0, [0.9, 0.9], 6.0), _row("fsq", 0, 25.5, [1.0, 1.0], 5.0)]
    summary = summarize(rows, ("ema", "fsq"))
    record = {
        "size": {"steps": 300, "batch_size": 32, "chunk": 10, "seconds": None, "prior_steps": 100, "samples": 64},
        "summary": summary,
        "verdict": verdict(summary),
        "preset": "natural-64",
        "seeds": 1,
        "threads": 1,
        "accelerator": {"device": "cpu", "precision": "32"},
    }
    text = report_body(record)
    assert "1 seed(s), 300 steps at batch 32" in text and "| fsq | 25.50 ± 0.00 | - |" in text
    assert "fsq vs ema: +0.50 dB (psnr; one seed, no spread to judge it by: no verdict)" in text
    assert record["verdict"]["fsq"]["wins"] is None


def test_sizes_are_bounded():
    with pytest.raises(ValueError, match="steps"):
        QuantizerStudySize(steps=0)
    with pytest.raises(ValueError, match="seconds"):
        QuantizerStudySize(seconds=-1.0)
    with pytest.raises(ValueError, match="samples"):
        QuantizerStudySize(samples=1)


@pytest.mark.slow
def test_quick_run_writes_the_report_and_plot(tmp_path):
    from archkit.studies.quantizers import run

    record = run(tmp_path, seeds=1, quick=True)
    assert (tmp_path / "report.md").is_file() and (tmp_path / "quantizers.png").is_file()
    assert {r["quantizer"] for r in record["rows"]} == {"ema", "fsq", "rotation"}
    assert {r["budget"] for r in record["rows"]} == {"steps", "cpu_time"}


def _record(size, seeds_rows, fingerprint="abc", quantizers=("ema", "fsq", "rotation")):
    from dataclasses import asdict

    rows = [
        {**_row(q, seed, 20.0 + seed, [0.9, 0.9], 6.0, budget=b), "cpu_s": 1.0, "wall_s": 1.0, "cpu_budget_s": 1.0}
        for seed, budgets in seeds_rows
        for q in quantizers
        for b in budgets
    ]
    for r in rows:
        r["distinct_sampled_codes"] = 40
    return {
        "preset": "natural-64",
        "size": asdict(size),
        "quantizers": list(quantizers),
        "classifier_sha256": fingerprint,
        "rows": rows,
    }


def test_a_stopped_study_resumes_after_its_last_finished_seed(tmp_path):
    import json

    from archkit.studies.quantizers import finished_seeds

    size, q = QuantizerStudySize(steps=7), ("ema", "fsq", "rotation")
    path = tmp_path / "results.json"
    assert finished_seeds(path, size, q, "abc") == ([], 0)  # nothing there yet
    both = ("steps", "cpu_time")
    path.write_text(json.dumps(_record(size, [(0, both), (1, both), (2, ("steps",))])))
    rows, done = finished_seeds(path, size, q, "abc")
    assert done == 2  # seed 2 stopped before its equal-CPU-time runs: it is run again
    assert {r["seed"] for r in rows} == {0, 1} and len(rows) == 2 * 3 * 2
    # another size, other quantizers or another classifier: the earlier rows do not mix in
    assert finished_seeds(path, QuantizerStudySize(steps=8), q, "abc") == ([], 0)
    assert finished_seeds(path, size, ("ema", "fsq"), "abc") == ([], 0)
    assert finished_seeds(path, size, q, "other") == ([], 0)
    path.write_text("{not json")
    assert finished_seeds(path, size, q, "abc") == ([], 0)


@pytest.mark.slow
def test_rerunning_the_same_study_keeps_the_finished_seed(tmp_path):
    import json

    from archkit.studies.quantizers import run

    (tmp_path / "results.json").write_text(json.dumps({"preset": "natural-64", "rows": []}))  # another study's
    with pytest.warns(UserWarning, match="starting at seed 0"):
        first = json.loads(json.dumps(run(tmp_path, seeds=1, quick=True)["rows"]))  # as results.json holds them
    second = run(tmp_path, seeds=2, quick=True)
    assert [r for r in second["rows"] if r["seed"] == 0] == first  # kept, not trained again
    assert {r["seed"] for r in second["rows"]} == {0, 1}


def test_every_model_of_the_study_runs_where_the_accelerator_says(monkeypatch):
    """The VQ-VAEs go through the study's accelerator (its device and precision); the prior that scores the
    codes goes to the same device in fp32, so its bits/code do not depend on --precision."""
    import torch

    from archkit.models.resnet import ResNet, ResNetConfig
    from archkit.studies import quantizers as qs
    from archkit.train.accelerate import Accelerator, create_accelerator

    prepared = []
    real = Accelerator.prepare

    def spy(self, model):
        prepared.append((type(model).__name__, self.device, self.precision))
        return real(self, model)

    monkeypatch.setattr(Accelerator, "prepare", spy)
    accel = create_accelerator("cpu", "bf16")
    size = QuantizerStudySize(steps=1, batch_size=4, chunk=1, prior_steps=2, samples=4, classifier_epochs=1)
    run = qs._Run("ema", 0, 8, size, 1e-3, accel)
    assert prepared == [("VQVAE2", accel.device, "bf16")]

    images = torch.rand(8, 3, 64, 64)
    clf = ResNet(ResNetConfig(in_channels=3, num_classes=3, stem_stride=2))
    row = qs._prior_row(run.model, images, images[:4], clf, size, 0, accel)
    assert prepared[1:] == [("GatedPixelCNN", accel.device, "32")]  # the yardstick: same device, fp32
    assert row["prior_bits_per_code"] > 0 and row["distinct_sampled_codes"] >= 1


@pytest.mark.parametrize(
    "key, value", [("psnr", None), ("usage", "full"), ("curve", [[1, 2]]), ("prior_bits_per_code", "6"), ("seed", True)]
)
def test_a_row_the_resume_or_report_cannot_read_makes_its_seed_run_again(tmp_path, key, value):
    import json

    from archkit.studies.quantizers import finished_seeds, row_problem

    size, q = QuantizerStudySize(steps=7), ("ema", "fsq", "rotation")
    record = _record(size, [(0, ("steps", "cpu_time")), (1, ("steps", "cpu_time"))])
    assert all(row_problem(r) is None for r in record["rows"])
    broken = next(i for i, r in enumerate(record["rows"]) if r["seed"] == 1 and r["budget"] == "steps")
    if value is None:
        del record["rows"][broken][key]
    else:
        record["rows"][broken][key] = value
    assert key in row_problem(record["rows"][broken])
    path = tmp_path / "results.json"
    path.write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=rf"results\.json: 1 row\(s\) unusable, first row {broken}: '{key}'"):
        rows, done = finished_seeds(path, size, q, "abc")
    assert done == 1 and {r["seed"] for r in rows} == {0}  # seed 1 runs again; the report reads only whole rows
    summarize(rows, q)
