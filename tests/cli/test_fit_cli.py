import json

import numpy as np
from click.testing import CliRunner

from archkit.cli.main import cli
from archkit.loading import load_model


def test_fit_expr_smoke(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        cli,
        [
            "fit",
            "--expr",
            "sin(x) + y",
            "--domain",
            "x=-pi:pi",
            "--domain",
            "y=-1:1",
            "--samples",
            "200",
            "--noise",
            "0.01",
            "--features",
            "sin",
            "--hidden",
            "8",
            "--layers",
            "1",
            "--max-steps",
            "40",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "in-domain RMSE" in res.output and "out-of-domain RMSE" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rmse_in_domain"] < 0.1 and summary["rmse_out_of_domain"] < 0.1
    assert (out / "fit.png").stat().st_size > 0
    model = load_model(out / "checkpoint")
    assert model.config.input_names == ["x", "y"]


def test_fit_csv_three_inputs(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (120, 3))
    rows = ["a,b,c,f"] + [f"{a},{b},{c},{a * b + c}" for a, b, c in X]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    res = CliRunner().invoke(
        cli,
        [
            "fit",
            "--csv",
            str(tmp_path / "d.csv"),
            "--target",
            "f",
            "--hidden",
            "8",
            "--layers",
            "1",
            "--max-steps",
            "20",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "n/a" in res.output and (tmp_path / "run" / "fit.png").is_file()


def test_fit_cli_errors_are_clean(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["fit", "--expr", "x.__class__", "--domain", "x=0:1", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "attribute access" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["fit", "--expr", "sin(x) + y", "--domain", "x=0:1", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "['y']" in res.output
    (tmp_path / "bad.csv").write_text("x,f\n1,2\n2,oops\n")
    res = runner.invoke(cli, ["fit", "--csv", str(tmp_path / "bad.csv"), "--target", "f", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "row 3, column 'f'" in res.output


def test_fit_one_input_expression_plot(tmp_path):
    res = CliRunner().invoke(
        cli,
        [
            "fit",
            "--expr",
            "x**2",
            "--domain",
            "x=0:1",
            "--samples",
            "50",
            "--hidden",
            "4",
            "--layers",
            "1",
            "--max-steps",
            "10",
            "--features",
            "poly2",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "summary.json").read_text())["rmse_out_of_domain"] < 0.05
