"""archkit.export: ONNX (checked with onnxruntime) and pt2 (checked by reloading) for archkit models, after surgery too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import archkit
from archkit.models import (
    VQVAE2,
    FunctionApproximator,
    FunctionApproximatorConfig,
    GatedPixelCNN,
    GatedPixelCNNConfig,
    ResNet,
    ResNetConfig,
    SequenceClassifier,
    SequenceClassifierConfig,
    VQVAE2Config,
)
from archkit.surgery import ExportError, export_model, fuse_bn, lowrank, randomize_bn_stats

pytest.importorskip("onnxruntime", reason="the `export` extra (onnx, onnxscript, onnxruntime) is not installed")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny graphs: a second thread only spins on a loaded box
    yield
    torch.set_num_threads(threads)


def tiny_resnet() -> ResNet:
    return randomize_bn_stats(ResNet(ResNetConfig(widths=(8, 16), blocks=(1, 1))), seed=0).eval()


def test_onnx_of_a_fused_resnet_matches_pytorch_in_onnxruntime(tmp_path):
    import onnxruntime as ort

    model, _ = fuse_bn(tiny_resnet())
    x = torch.randn(2, 1, 16, 16)
    result = archkit.export(model, x, tmp_path / "net.onnx")
    assert result.format == "onnx" and result.checked_with == "onnxruntime" and result.rel_error <= 1e-4
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    x2 = torch.randn(2, 1, 16, 16)  # another input than the one traced on
    (out,) = session.run(None, {session.get_inputs()[0].name: x2.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x2).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make,args",
    [
        (
            lambda: VQVAE2(VQVAE2Config(hidden_channels=8, res_channels=4, code_dim=4, num_codes=8)),
            lambda: (torch.rand(1, 3, 16, 16),),
        ),
        (
            lambda: GatedPixelCNN(GatedPixelCNNConfig(num_codes=16, channels=8, layers=2, head_channels=8)),
            lambda: (torch.randint(16, (2, 4, 4)),),
        ),
        (
            lambda: SequenceClassifier(
                SequenceClassifierConfig(
                    in_features=3,
                    num_classes=4,
                    hidden=8,
                    frontend="conv",
                    conv_channels=8,
                    conv_stride=1,
                    fcn_channels=4,
                    pool="mean",
                )
            ),
            lambda: (torch.randn(2, 20, 3),),
        ),
        (
            lambda: FunctionApproximator(FunctionApproximatorConfig(in_dim=2, features=["sin"])),
            lambda: (torch.randn(4, 2),),
        ),
    ],
    ids=["vqvae2", "pixelcnn", "sequence", "function"],
)
def test_pt2_of_every_model_kind_reloads_with_the_same_outputs(tmp_path, make, args):
    model = make().eval()
    result = export_model(model, args(), tmp_path / "model.pt2")
    assert result.checked_with == "torch.export.load" and result.rel_error <= 1e-4
    program = torch.export.load(result.path)
    assert program.module() is not None


def test_onnx_after_lowrank_surgery(tmp_path):
    model = tiny_resnet()
    x = torch.randn(2, 1, 16, 16)
    small, report = lowrank(model, energy=0.5, example_inputs=x)
    assert report.changed  # a factorized layer is in the exported graph
    assert export_model(small, x, tmp_path / "small.onnx").rel_error <= 1e-4


class _ValueBranch(nn.Module):
    def forward(self, x):
        return x * 2 if x.sum() > 0 else x  # branches on the data: no exporter can trace this


def test_an_op_that_cannot_export_is_named_by_layer(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), _ValueBranch(), nn.Linear(4, 2))
    with pytest.raises(ExportError, match=r"layer '1' \(_ValueBranch\) cannot export"):
        export_model(model, torch.randn(3, 4), tmp_path / "bad.pt2")
    assert not (tmp_path / "bad.pt2").exists()


def test_packed_variable_length_sequences_give_a_clear_error(tmp_path):
    model = SequenceClassifier(SequenceClassifierConfig(in_features=3, num_classes=2, hidden=4)).eval()
    with pytest.raises(ExportError, match="fixed-length"):
        export_model(model, (torch.randn(2, 6, 3), torch.tensor([6, 3])), tmp_path / "seq.pt2")


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(ExportError, match="format"):
        export_model(nn.Linear(2, 2), torch.randn(1, 2), tmp_path / "x.tflite")
    with pytest.raises(ExportError, match="example_inputs"):
        export_model(nn.Linear(2, 2), [1.0, 2.0], tmp_path / "x.pt2")
