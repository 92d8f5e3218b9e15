"""Names and modules that moved: the old import path fails with one line naming the new home, which exists."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import archkit
from archkit.utils.moved import MovedError, MovedNames, point_moved_names

# (old module, name, new module): every public name that left a module, where a user could have imported it
MOVED = [
    ("archkit.models", "load_model", "archkit.loading"),
    ("archkit.models", "build_model", "archkit.loading"),
    ("archkit.models.registry", "load_model", "archkit.loading"),
    ("archkit.models.registry", "build_model", "archkit.loading"),
    ("archkit.models.registry", "example_inputs_for", "archkit.utils.modules"),
    ("archkit.models.vqvae", "PRESETS", "archkit.models.vqvae_presets"),
    ("archkit.models.vqvae", "format_layout_table", "archkit.models.vqvae_layout"),
    ("archkit.models.vqvae", "format_presets", "archkit.models.vqvae_layout"),
    ("archkit.models.vqvae", "layout_table", "archkit.models.vqvae_layout"),
    ("archkit.data.images", "save_image_grid", "archkit.utils.plots"),
    ("archkit.data.images", "EXTENSIONS", "archkit.data.folder"),
    ("archkit.data.images", "TEST_FRACTION", "archkit.data.folder"),
    ("archkit.data.sequences", "LONG_TASK", "archkit.data.synthetic_task"),
    ("archkit.data.sequences", "LONG_TASK_CLASSES", "archkit.data.synthetic_task"),
    ("archkit.data.sequences", "make_long_task", "archkit.data.synthetic_task"),
    ("archkit.data.sequences", "write_long_task", "archkit.data.synthetic_task"),
    ("archkit.data.sequences", "RealDataset", "archkit.data.aeon_sets"),
    ("archkit.data.sequences", "SEQ_EXTRA_HINT", "archkit.data.aeon_sets"),
    ("archkit.data.sequences", "list_real_datasets", "archkit.data.aeon_sets"),
    ("archkit.data.sequences", "load_real_dataset", "archkit.data.aeon_sets"),
    ("archkit.surgery.fuse", "bn_scale_shift", "archkit.surgery.bnfold"),
    ("archkit.surgery.fuse", "fold_into_consumer", "archkit.surgery.bnfold"),
    ("archkit.surgery.fuse", "fold_into_producer", "archkit.surgery.bnfold"),
    ("archkit.surgery.fuse", "BN_TYPES", "archkit.surgery.edit"),
    ("archkit.train.sequence", "LR_SCHEDULES", "archkit.train.schedule"),
    ("archkit.train.sequence", "predict_sequences", "archkit.train.sequence_eval"),
    ("archkit.train.vqvae", "encode_dataset", "archkit.train.encode"),
    ("archkit.train.vqvae", "image_batches", "archkit.train.vqvae_data"),
]
MOVED_MODULES = [
    ("archkit.data.long_task", "archkit.data.synthetic_task"),
    ("archkit.data.longtasks", "archkit.data.real_tasks"),
]


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_a_moved_name_fails_with_one_line_naming_its_new_home(old, name, new):
    assert hasattr(importlib.import_module(new), name)  # the pointer names a place that holds it
    with pytest.raises(MovedError) as err:
        exec(f"from {old} import {name}", {})
    message = str(err.value)
    assert message == f"{old}.{name} moved to {new}: import it from there"
    assert "\n" not in message
    with pytest.raises(ImportError, match=f"moved to {new}"):  # attribute access says the same
        getattr(importlib.import_module(old), name)


def test_every_pointer_in_the_package_is_listed_here_and_leads_somewhere():
    listed = {(old, name): new for old, name, new in MOVED}
    found = {}
    for module in list(sys.modules.values()):
        getter = vars(module).get("__getattr__") if module.__name__.startswith("archkit") else None
        if isinstance(getter, MovedNames):
            found.update({(getter.module, name): new for name, new in getter.moved.items()})
    assert found == listed


def test_other_missing_names_stay_plain_attribute_errors():
    models = importlib.import_module("archkit.models")
    assert not hasattr(models, "no_such_name")
    assert getattr(models, "no_such_name", 7) == 7
    with pytest.raises(ImportError, match="cannot import name 'no_such_name'") as err:
        exec("from archkit.models import no_such_name", {})
    assert not isinstance(err.value, MovedError)


@pytest.mark.parametrize(("old", "new"), MOVED_MODULES)
def test_a_renamed_module_fails_with_one_line_naming_the_new_module(old, new):
    importlib.import_module(new)
    for statement in (
        f"import {old}",
        f"from {old} import x",
        f"from {old.rsplit('.', 1)[0]} import {old.rsplit('.', 1)[1]}",
    ):
        with pytest.raises(MovedError, match=f"^module {old} moved to {new}: import from there$"):
            exec(statement, {})


def test_the_renamed_modules_pointer_works_in_a_fresh_process():
    # The finder is installed by archkit.data itself: an import of the old path alone must trigger it.
    code = "import archkit.data.longtasks"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "archkit.utils.moved.MovedError: module archkit.data.longtasks moved to archkit.data.real_tasks: import from there"
    )


def test_function_approximator_fit_names_fit_function():
    model = archkit.FunctionApproximator(archkit.FunctionApproximatorConfig(in_dim=1))
    with pytest.raises(AttributeError) as err:
        model.fit([[0.0], [1.0]], [0.0, 1.0], max_steps=5)
    assert str(err.value).startswith("FunctionApproximator.fit moved: use archkit.train.fit_function(model, X, y, ")
    assert "archkit.FunctionRegressor" in str(err.value) and "\n" not in str(err.value)
    assert callable(archkit.train.fit_function) and archkit.FunctionRegressor is not None


def test_a_pointer_for_a_name_the_module_still_holds_is_refused():
    with pytest.raises(ValueError, match=r"archkit.models.registry still defines \['create_model'\]"):
        point_moved_names("archkit.models.registry", {"elsewhere": ("create_model",)})
