"""The device/precision layer: device resolution and its errors, bf16/16-mixed training steps on the CPU,
compile unwrapping, runs saved with device=cuda loading on the CPU, resume keeping the saved choice."""

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from torch import nn

from archkit.cli.main import cli
from archkit.models.vqvae import VQVAE2, VQVAE2Config, load_vqvae
from archkit.train import FunctionFitConfig, StaleCodesWarning, fit_function, read_config, save_checkpoint
from archkit.train import accelerate as acc
from archkit.train.accelerate import create_accelerator, resolve_device, restore_choice, unwrap_model, use_accelerator
from archkit.train.encode import encode_dataset
from archkit.train.generate import sample_images
from archkit.train.prior import PriorTrainConfig, train_prior
from archkit.train.utils import fit_classifier
from archkit.train.vqvae import VQVAETrainConfig, train_step, train_vqvae

TINY = dict(
    image_size=16,
    hidden_channels=16,
    res_blocks=1,
    res_channels=8,
    code_dim=8,
    num_codes=16,
    batch_size=8,
    eval_every=2,
    restart_after=2,
    code_dropout=0.5,
)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def two_fake_gpus(monkeypatch):
    # resolution is pure bookkeeping: no CUDA call is made, so it can be checked on a CPU machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


# -- device resolution ----------------------------------------------------------------------------


def test_auto_and_cpu_resolve_to_the_cpu_without_cuda(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_on_a_machine_without_one_names_the_flag_and_what_is_available(no_cuda, spec):
    with pytest.raises(ValueError) as e:
        resolve_device(spec)
    assert str(e.value) == f"--device: {spec!r} was requested but this machine has no CUDA device; available: cpu"


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "", "cuda0", "tpu"])
def test_malformed_device_strings_are_refused(spec):
    with pytest.raises(ValueError, match=r"--device: expected one of auto, cpu, cuda, cuda:N, mps"):
        resolve_device(spec)


def test_mps_without_mps_is_refused(monkeypatch):
    monkeypatch.setattr(acc, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="--device: 'mps' was requested but this machine has no Apple MPS"):
        resolve_device("mps")


def test_cuda_index_out_of_range_and_torchrun_local_rank(two_fake_gpus, monkeypatch):
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(
        ValueError,
        match=r"--device: cuda:2 was requested but this machine has 2 CUDA device\(s\); "
        r"available: cpu, cuda:0, cuda:1",
    ):
        resolve_device("cuda:2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 1)  # each rank its own GPU
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(ValueError, match=r"cuda:2 \(torchrun LOCAL_RANK=2\)"):
        resolve_device("auto")


def test_precision_names_and_errors():
    assert create_accelerator("cpu", "bf16-mixed").precision == "bf16"  # Lightning's spelling
    assert create_accelerator("cpu", "32").scaler is None
    assert create_accelerator("cpu", "bf16").scaler is None  # bf16 needs no loss scaling
    with pytest.raises(ValueError, match=r"--precision: expected one of auto, 32, bf16, 16-mixed, got 'fp8'"):
        create_accelerator("cpu", "fp8")


def test_16_mixed_on_the_cpu_gets_a_scaler_or_a_clear_error(monkeypatch):
    accel = create_accelerator("cpu", "16-mixed")  # works in torch 2.13: fp16 autocast + GradScaler on the CPU
    assert accel.autocast_dtype == torch.float16 and accel.scaler is not None
    monkeypatch.setattr(acc, "_CPU_FP16", False)  # an older torch where it does not
    with pytest.raises(ValueError, match=r"--precision: 16-mixed .* does not work on the CPU .* use bf16 or 32"):
        create_accelerator("cpu", "16-mixed")


def test_compile_without_a_cxx_compiler_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(acc.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match=r"--compile: torch\.compile on the CPU needs a C\+\+ compiler"):
        create_accelerator("cpu", "32", True)
    assert create_accelerator("cpu", "32", False).compile is False


def test_to_device_keeps_structure_and_none():
    accel = create_accelerator("cpu")
    x, y = torch.ones(2), torch.zeros(2, dtype=torch.long)
    out = accel.to_device((x, None, [y], {"k": x}))
    assert out[1] is None and torch.equal(out[2][0], y) and torch.equal(out[3]["k"], x)


# -- compile and DDP wrappers never leak into saved keys ---------------------------------------------


def test_compiled_module_saves_plain_keys(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    compiled = create_accelerator("cpu", compile=True).compile_model(model)  # lazy: nothing compiles until called
    assert compiled is not model and unwrap_model(compiled) is model
    assert create_accelerator("cpu").compile_model(model) is model  # compile off: the module itself
    save_checkpoint(tmp_path / "ck", compiled, {"n": 1}, kind="test")
    keys = set(load_file(str(tmp_path / "ck" / "model.safetensors")))
    assert keys == set(model.state_dict()) and not any("_orig_mod" in k for k in keys)


@pytest.mark.slow
def test_compile_on_trains_a_tiny_classifier():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    before = [p.detach().clone() for p in model.parameters()]
    result = fit_classifier(model, x, y, epochs=2, batch_size=16, accel=create_accelerator("cpu", "32", True))
    assert all(np.isfinite(result.epoch_losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not any("_orig_mod" in k for k in model.state_dict())


# -- reduced-precision training steps on the CPU ---------------------------------------------------


def _changed(before, model):
    return any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("precision", ["bf16", "16-mixed"])
def test_vqvae_step_in_reduced_precision_keeps_fp32_parameters_and_codebooks(precision):
    torch.manual_seed(0)
    model = VQVAE2(
        VQVAE2Config(
            in_channels=1, levels=2, hidden_channels=16, res_blocks=1, res_channels=8, code_dim=8, num_codes=16
        )
    )
    accel = create_accelerator("cpu", precision)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.rand(8, 1, 16, 16)
    books = [b.detach().clone() for name, b in model.named_buffers() if name.endswith("codebook")]
    for _ in range(3):
        out = train_step(model, opt, x, accel)
    assert np.isfinite(out["loss"]) and np.isfinite(out["psnr"])
    assert _changed(before, model)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    after = {name: b for name, b in model.named_buffers() if name.endswith("codebook") or "ema" in name}
    assert after and all(b.dtype == torch.float32 for b in after.values()), {k: b.dtype for k, b in after.items()}
    codebooks = [b for name, b in after.items() if name.endswith("codebook")]
    assert len(codebooks) == 2 and any(not torch.equal(a, b) for a, b in zip(books, codebooks))  # EMA moved them


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory):
    """A complete tiny run (VQ-VAE-2, codes, both priors) trained on the CPU in bf16."""
    run = tmp_path_factory.mktemp("accel") / "run"
    result = train_vqvae(
        VQVAETrainConfig(out=str(run), steps=2, device="cpu", precision="bf16", **TINY), progress=False
    )
    encode_dataset(run, device="cpu", precision="bf16")
    priors = [
        train_prior(
            PriorTrainConfig(
                run=str(run),
                level=level,
                steps=3,
                batch_size=16,
                channels=8,
                layers=1,
                kernel_size=3,
                eval_every=3,
                device="cpu",
                precision="bf16",
            ),
            progress=False,
        )
        for level in (0, 1)
    ]
    return run, result, priors


def _copy(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def _say_cuda(run):
    """Rewrite a run's saved choices as if it had been trained on a GPU."""
    path = run / "train_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "device": "cuda"}))
    for level in (0, 1):
        path = run / f"prior-{level}" / "config.json"
        meta = json.loads(path.read_text())
        meta["train_config"]["device"] = "cuda"
        path.write_text(json.dumps(meta))
        (path.parent / "manifest.json").unlink()  # hand-edited: the folder now reads as a pre-manifest checkpoint


def test_vqvae_bf16_training_run_records_its_choice(bf16_run):
    run, result, _ = bf16_run
    assert result["accelerator"] == {"device": "cpu", "precision": "bf16", "compile": False}
    assert np.isfinite(result["psnr"])
    saved = json.loads((run / "train_config.json").read_text())
    assert (saved["device"], saved["precision"], saved["compile"]) == ("cpu", "bf16", False)
    for t in load_file(str(run / "vqvae" / "model.safetensors")).values():
        assert not t.is_floating_point() or t.dtype == torch.float32


def test_prior_bf16_training_logs_finite_bits_and_saves_its_choice(bf16_run):
    run, _, priors = bf16_run
    for level, rec in enumerate(priors):
        assert rec["step"] == 3 and np.isfinite(rec["test_bits_per_code"]) and np.isfinite(rec["train_loss_bits"])
        meta = read_config(run / f"prior-{level}")
        assert meta["train_config"]["precision"] == "bf16" and meta["train_config"]["device"] == "cpu"
        weights = load_file(str(run / f"prior-{level}" / "model.safetensors"))
        assert all(t.dtype == torch.float32 for t in weights.values() if t.is_floating_point())


def test_run_saved_with_device_cuda_loads_and_samples_on_the_cpu(bf16_run, tmp_path, no_cuda):
    run = _copy(bf16_run[0], tmp_path)
    _say_cuda(run)
    assert next(load_vqvae(run).parameters()).device.type == "cpu"
    for device in ("cpu", "auto"):
        images, _codes = sample_images(run, 6, torch.arange(6) % 10, seed=1, device=device)
        assert images.shape == (6, 1, 16, 16) and images.device.type == "cpu" and torch.isfinite(images).all()
    a, _ = sample_images(run, 4, torch.arange(4), seed=3, device="cpu")
    b, _ = sample_images(run, 4, torch.arange(4), seed=3, device="auto")
    assert torch.equal(a, b)
    res = CliRunner().invoke(
        cli, ["sample", "--run", str(run), "--n", "2", "--out", str(tmp_path / "s.png"), "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s.png").stat().st_size > 0


def test_resume_of_a_cuda_run_on_the_cpu_says_which_flag_to_pass(bf16_run, tmp_path, no_cuda):
    run = _copy(bf16_run[0], tmp_path)
    _say_cuda(run)
    cfg = VQVAETrainConfig(out=str(run), steps=3, resume=True, **TINY)
    with pytest.raises(
        ValueError,
        match=r"--device \(the value saved with the run being resumed; pass --device to "
        r"override it\): 'cuda' was requested but this machine has no CUDA device",
    ):
        train_vqvae(cfg, progress=False)
    result = train_vqvae(VQVAETrainConfig(out=str(run), steps=3, resume=True, device="cpu", **TINY), progress=False)
    assert result["step"] == 3 and result["accelerator"]["precision"] == "bf16"  # precision still restored


def test_resume_restores_the_saved_precision_unless_given(bf16_run, tmp_path):
    run = _copy(bf16_run[0], tmp_path)
    result = train_vqvae(VQVAETrainConfig(out=str(run), steps=3, resume=True, **TINY), progress=False)
    assert result["accelerator"]["precision"] == "bf16"
    assert json.loads((run / "train_config.json").read_text())["precision"] == "bf16"
    result = train_vqvae(
        VQVAETrainConfig(out=str(run), steps=4, resume=True, **TINY), progress=False, explicit={"precision"}
    )  # `--precision 32` given on the command line
    assert result["accelerator"]["precision"] == "32" and result["step"] == 4
    prior = dict(run=str(run), level=0, steps=4, batch_size=16, eval_every=4, resume=True)
    with pytest.raises(ValueError, match=r"step 2 .* step 4"):  # the codes predate the VQ-VAE trained on above
        train_prior(PriorTrainConfig(**prior), progress=False)
    with pytest.warns(StaleCodesWarning, match="accept-stale-codes"):
        rec = train_prior(PriorTrainConfig(**prior, accept_stale_codes=True), progress=False)
    assert rec["step"] == 4
    assert read_config(run / "prior-0")["train_config"]["precision"] == "bf16"


def test_restore_choice_rules():
    cfg = VQVAETrainConfig()
    assert restore_choice(cfg, {"device": "cuda", "precision": "bf16", "compile": True}) == [
        "device",
        "precision",
        "compile",
    ]
    assert (cfg.device, cfg.precision, cfg.compile) == ("cuda", "bf16", True)
    cfg = VQVAETrainConfig(device="cpu")  # a non-default value is a choice
    assert restore_choice(cfg, {"device": "cuda", "precision": "bf16"}, explicit={"precision"}) == []
    assert (cfg.device, cfg.precision) == ("cpu", "32")
    assert restore_choice(cfg, None) == []


def test_cli_flags_reach_the_config_and_resume_keeps_the_saved_ones(tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    flags = [
        "--image-size",
        "16",
        "--hidden-channels",
        "16",
        "--res-blocks",
        "1",
        "--res-channels",
        "8",
        "--code-dim",
        "8",
        "--num-codes",
        "16",
        "--batch-size",
        "8",
        "--eval-every",
        "2",
        "--quiet",
    ]
    res = runner.invoke(
        cli, ["vqvae", "train", "--out", str(out), "--steps", "2", "--device", "cpu", "--precision", "bf16", *flags]
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((out / "train_config.json").read_text())
    assert (saved["device"], saved["precision"], saved["compile"]) == ("cpu", "bf16", False)
    res = runner.invoke(cli, ["vqvae", "train", "--out", str(out), "--steps", "3", "--resume", *flags])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "train_config.json").read_text())["precision"] == "bf16"
    res = runner.invoke(
        cli, ["vqvae", "train", "--out", str(out), "--steps", "4", "--resume", "--precision", "32", *flags]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "train_config.json").read_text())["precision"] == "32"
    res = runner.invoke(cli, ["vqvae", "encode", "--run", str(out), "--device", "cpu", "--precision", "bf16"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        cli,
        [
            "prior",
            "train",
            "--run",
            str(out),
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--channels",
            "8",
            "--layers",
            "1",
            "--kernel-size",
            "3",
            "--precision",
            "bf16",
            "--device",
            "cpu",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert read_config(out / "prior-0")["train_config"]["precision"] == "bf16"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "cuda:7"], "'cuda:7' was requested but this machine has no CUDA device; available: cpu"),
        (["--device", "gpu"], "expected one of auto, cpu, cuda, cuda:N, mps"),
        (["--precision", "fp8"], "'fp8' is not one of 'auto', '32', 'bf16', '16-mixed'"),
    ],
)
def test_bad_cli_values_are_one_clear_line(tmp_path, no_cuda, args, message):
    for command in (
        ["vqvae", "encode", "--run", str(tmp_path)],
        ["seq", "predict", "--run", str(tmp_path), "--x", str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npy")],
        ["study", "reduction", "--quick"],
        ["fit", "--expr", "x", "--domain", "x=0:1"],
        ["evaluate", "--run", str(tmp_path)],
    ):
        res = CliRunner().invoke(cli, [*command, *args])
        assert res.exit_code == 2, (command, res.output)
        assert message in res.output and "Traceback" not in res.output


def test_fit_cli_refuses_bf16_in_one_line(tmp_path):
    res = CliRunner().invoke(
        cli,
        [
            "fit",
            "--expr",
            "x",
            "--domain",
            "x=0:1",
            "--samples",
            "20",
            "--precision",
            "bf16",
            "--out",
            str(tmp_path / "f"),
        ],
    )
    assert res.exit_code == 2 and "--precision: the function fit trains in float64" in res.output


def test_fit_classifier_bf16_and_16_mixed_steps_update_parameters():
    for precision in ("bf16", "16-mixed"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
        x, y = torch.rand(32, 1, 8, 8), torch.randint(0, 3, (32,))
        before = [p.detach().clone() for p in model.parameters()]
        result = fit_classifier(
            model, x, y, epochs=2, batch_size=8, x_test=x, y_test=y, accel=create_accelerator("cpu", precision)
        )
        assert all(np.isfinite(result.epoch_losses)) and 0 <= result.test_accuracy <= 1
        assert _changed(before, model) and all(p.dtype == torch.float32 for p in model.parameters())


def test_use_accelerator_sets_the_default_of_fit_classifier(monkeypatch):
    seen = []
    real = acc.Accelerator.autocast

    def spy(self):
        seen.append(self.precision)
        return real(self)

    monkeypatch.setattr(acc.Accelerator, "autocast", spy)
    model = nn.Linear(3, 2)
    with use_accelerator(create_accelerator("cpu", "bf16")):
        fit_classifier(model, torch.randn(8, 3), torch.randint(0, 2, (8,)), epochs=1, batch_size=4)
    fit_classifier(model, torch.randn(8, 3), torch.randint(0, 2, (8,)), epochs=1, batch_size=4)
    assert seen == ["bf16", "bf16", "32", "32"]


def test_function_fit_refuses_reduced_precision_and_runs_on_the_cpu():
    from archkit.models import FunctionApproximator, FunctionApproximatorConfig

    model = FunctionApproximator(FunctionApproximatorConfig(in_dim=1, out_dim=1, hidden=8, layers=1))
    x = np.linspace(-1, 1, 64)[:, None]
    with pytest.raises(ValueError, match="--precision: the function fit trains in float64"):
        fit_function(model, x, np.sin(x[:, 0]), FunctionFitConfig(precision="bf16"))
    result = fit_function(model, x, np.sin(x[:, 0]), FunctionFitConfig(max_steps=40, optimizer="adam", device="cpu"))
    assert np.isfinite(result.best_val_rmse) and np.isfinite(model.predict(x)).all()


@pytest.mark.parametrize("precision", ["bf16", "16-mixed"])
def test_sequence_training_in_reduced_precision_then_predict(tmp_path, precision):
    from archkit.data import make_long_task
    from archkit.loading import load_model
    from archkit.train import SeqTrainConfig, predict_sequences, train_sequence

    x, y = make_long_task(32, seed=0, length=64)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    cfg = SeqTrainConfig(
        out=str(tmp_path / "run"),
        x=str(tmp_path / "X.npy"),
        y=str(tmp_path / "Y.npy"),
        hidden=8,
        layers=1,
        frontend="conv",
        conv_channels=8,
        conv_stride=2,
        epochs=2,
        batch_size=8,
        progress=False,
        device="cpu",
        precision=precision,
    )
    torch.manual_seed(0)
    summary = train_sequence(cfg)
    assert summary["accelerator"]["precision"] == precision and summary["stopped"] == "done"
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["train_loss"]) for r in lines)
    meta = read_config(tmp_path / "run" / "checkpoint")
    assert meta["train_config"]["precision"] == precision
    model = load_model(tmp_path / "run" / "checkpoint")
    pred, proba = predict_sequences(
        model, np.load(tmp_path / "X.npy", mmap_mode="r"), device="cpu", precision=precision
    )
    assert pred.shape == (32,) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-3)
    # resume without a precision keeps the saved one
    summary = train_sequence(SeqTrainConfig(**{**cfg.__dict__, "precision": "32", "epochs": 3}), resume=True)
    assert summary["accelerator"]["precision"] == precision and summary["epoch"] == 3


def test_channels_last_step_computes_what_the_plain_layout_does(tmp_path):
    import copy

    torch.manual_seed(0)
    plain = VQVAE2(VQVAE2Config(**{k: TINY[k] for k in ("hidden_channels", "res_channels", "code_dim", "num_codes")}))
    nhwc = copy.deepcopy(plain).to(memory_format=torch.channels_last)
    x = torch.rand(8, 3, 16, 16)
    accel = acc.create_accelerator("cpu")
    losses = {}
    for name, model, batch in (("plain", plain, x), ("nhwc", nhwc, x.contiguous(memory_format=torch.channels_last))):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses[name] = train_step(model, opt, batch, accel)["loss"]
    assert losses["nhwc"] == pytest.approx(losses["plain"], rel=1e-4)
    for (name, a), b in zip(plain.state_dict().items(), nhwc.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5, msg=name)  # one step: no code choice has diverged yet
    out = tmp_path / "run"
    train_vqvae(VQVAETrainConfig(out=str(out), steps=2, device="cpu", **TINY), progress=False)
    assert json.loads((out / "train_config.json").read_text())["channels_last"] is True  # the default
    assert all(torch.isfinite(w).all() for w in load_vqvae(out).state_dict().values() if w.is_floating_point())
