"""Notebook parameters are typed and checked before anything runs; one name means one thing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mtrec_helpers.core.paths import project_root
from mtrec_helpers.course.parameters import (
    SHARED,
    NotebookParameterError,
    check_declared_somewhere,
    check_value,
    declared_parameters,
)
from mtrec_helpers.course.runner import (
    MAKEFILE_VARIABLES,
    NotebookFailed,
    make_overrides,
    numbered_notebooks,
    run_notebook,
)
from mtrec_helpers.course.runner import main as notebooks_main

NOTEBOOKS = numbered_notebooks()
PRETRAINING = NOTEBOOKS[1]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "EPOCHS",
            "abc",
            "EPOCHS='abc' (for 02_transformer_pretraining.ipynb): expected an int like the default 100, "
            "got text",
        ),
        ("EPOCHS", 1.5, "EPOCHS=1.5 (for 02_transformer_pretraining.ipynb): expected an int"),
        ("EPOCHS", 0, "EPOCHS=0 (for 02_transformer_pretraining.ipynb): every value must be ≥ 1"),
        ("DROPOUT", 0.3, "expected a dict like the default {'masked': 0.2, 'causal': 0.5}, got float"),
        ("DROPOUT", {"masked": 1.2}, "DROPOUT={'masked': 1.2}"),
        ("OBJECTIVES", ["causal", "sasrec"], "choose from ['masked', 'causal']"),
        ("KNN_NEIGHBOURS", [], "every value must be ≥ 1"),
        ("SIDE_INFO", 1, "expected a bool"),
        ("DEVICE", "gpu", "use auto, cpu or cuda (choose the GPU with CUDA_VISIBLE_DEVICES=N"),
        ("DEVICE", "cuda:1", "use auto, cpu or cuda"),  # the engine places a process on its rank's GPU
        ("DATASET", "ml-3k", "choose from ['ml-100k', 'ml-1m'"),
        ("LR", 1e999, "LR=inf (for 02_transformer_pretraining.ipynb): every value must be a finite number"),
        ("LR", float("nan"), "LR=nan (for 02_transformer_pretraining.ipynb): every value must be a finite"),
        ("DROPOUT", {"causal": float("inf")}, "every value must be a finite number"),
        (
            "SEED",
            2**64,
            "SEED=18446744073709551616 (for 02_transformer_pretraining.ipynb): every value must "
            "be ≥ 0 and ≤ 2147483647",
        ),
    ],
)
def test_overrides_of_the_wrong_type_or_range_are_refused(name: str, value: object, message: str) -> None:
    with pytest.raises(NotebookParameterError) as caught:
        check_declared_somewhere([PRETRAINING], {name: value})
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_overrides_of_the_right_type_pass() -> None:
    check_declared_somewhere(
        NOTEBOOKS,
        {"EPOCHS": 1, "LR": 1, "DROPOUT": {"causal": 0.3}, "TASKS": ["next", "like"], "DEVICE": "cuda",
         "STUDENT_HIDDEN": [16], "HELDOUT_SIMULATOR": {"leave_slope": 0.5}, "DATASET": "ml-latest-small"},
    )  # fmt: skip
    check_value("EPSILON", [0.3, 0.0], [0.5, 0.05], "04_rl_ranking.ipynb")
    check_value("SEED", 2**31 - 1, 0, "02_transformer_pretraining.ipynb")


def test_a_name_means_one_thing_across_the_course() -> None:
    """A parameter declared by several notebooks is listed in SHARED and has one type everywhere
    (DROPOUT was a dict in 02 and a float in 05, so no single override could suit both)."""
    declared = {nb.name: declared_parameters(nb) for nb in NOTEBOOKS}
    owners: dict[str, list[str]] = {}
    for notebook, names in declared.items():
        for name in names:
            owners.setdefault(name, []).append(notebook)
    shared = {name for name, notebooks in owners.items() if len(notebooks) > 1}
    assert shared <= set(SHARED), f"declared by several notebooks but not in SHARED: {shared - set(SHARED)}"
    for name in shared:
        defaults = [declared[nb][name] for nb in owners[name]]
        assert len({type(d) for d in defaults}) == 1, (name, defaults)
        for notebook, default in zip(owners[name], defaults, strict=True):
            for other in defaults:
                check_value(name, other, default, notebook)


def test_bad_override_stops_before_the_first_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    assert notebooks_main(["--runs-dir", str(runs), "EPOCHS=abc"]) == 1
    error = capsys.readouterr().err
    assert "EPOCHS='abc'" in error and ".ipynb" in error and "expected an int" in error
    assert not runs.exists()


def test_only_refuses_a_notebook_that_does_not_exist(capsys: pytest.CaptureFixture[str]) -> None:
    assert notebooks_main(["--only", "07"]) == 1
    expected = "--only 07: no such notebook; the notebooks are 01, 02, 02b, 03, 03b, 04, 05, 06"
    assert expected in capsys.readouterr().err


def test_make_command_line_variables_become_overrides() -> None:
    flags = ' -- DATSET=ml-1m PARAMS=LR=2\\ X=3 SCORE_MEMBERS=["ease",\\ "pop"] EPOCHS=1 lower=1 DEVICE=cpu'
    environ = {"DATSET": "ml-1m", "PARAMS": "LR=2 X=3", "SCORE_MEMBERS": '["ease", "pop"]', "EPOCHS": "1",
               "lower": "1", "DEVICE": "cpu"}  # fmt: skip
    assert make_overrides(flags, environ) == {
        "DATSET": "ml-1m",
        "SCORE_MEMBERS": ["ease", "pop"],
        "EPOCHS": 1,
    }
    assert make_overrides("", environ) == {}


def test_makefile_variables_are_the_ones_the_runner_leaves_to_make() -> None:
    makefile = (project_root() / "Makefile").read_text(encoding="utf-8")
    assigned = {
        line.split("?=")[0].strip() for line in makefile.splitlines() if "?=" in line and line[0].isupper()
    }
    assert assigned == set(MAKEFILE_VARIABLES)


def _make_run(tmp_path: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    command = [
        "make",
        "-s",
        "run",
        f"ARTIFACTS_DIR={tmp_path / 'a'}",
        f"RUNS_DIR={tmp_path / 'r'}",
        *variables,
    ]
    return subprocess.run(
        command, cwd=project_root(), env=environ, capture_output=True, text=True, timeout=120
    )


def test_make_run_refuses_a_misspelt_or_ill_typed_variable(tmp_path: Path) -> None:
    """`make run DATSET=ml-1m` used to start the full default run; `make run EPOCHS=1.5` crashed in 02."""
    typo = _make_run(tmp_path, "DATSET=ml-1m")
    assert typo.returncode != 0 and "no notebook declares DATSET (did you mean DATASET?)" in typo.stderr
    wrong = _make_run(tmp_path, "EPOCHS=1.5")
    assert wrong.returncode != 0 and "EPOCHS=1.5 (for 02_transformer_pretraining.ipynb)" in wrong.stderr
    assert not (tmp_path / "r").exists()


def test_a_dead_kernel_says_which_notebook_and_where_the_copy_is(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("X = 1")
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
    ]
    notebook.metadata["kernelspec"] = {"name": "mtrec", "display_name": "mtrec", "language": "python"}
    path = tmp_path / "99_dies.ipynb"
    nbformat.write(notebook, path)
    with pytest.raises(NotebookFailed) as caught:
        run_notebook(path, tmp_path / "runs" / path.name, {"X": 2})
    message = str(caught.value)
    assert "99_dies.ipynb stopped: its Jupyter kernel died" in message and "out of memory" in message
    assert str(tmp_path / "runs" / path.name) in message and (tmp_path / "runs" / path.name).is_file()


def test_runs_folder_that_cannot_be_created_is_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert notebooks_main(["--runs-dir", str(blocker / "runs"), "--only", "01"]) == 1
    error = capsys.readouterr().err
    assert f"{blocker / 'runs'}: cannot create or write this folder" in error and "RUNS_DIR" in error


def test_a_kernel_that_exits_at_start_is_one_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel that exits before answering (as when its socket folder was missing) used to end `make
    run` with nbclient's raw RuntimeError; it is a NotebookFailed naming the notebook and the kernel."""
    spec = tmp_path / "jupyter" / "kernels" / "exits"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-c", "raise SystemExit(3)"],
                "display_name": "exits",
                "language": "python",
            }
        )  # fmt: skip
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    with pytest.raises(NotebookFailed) as caught:
        run_notebook(NOTEBOOKS[0], tmp_path / "runs" / NOTEBOOKS[0].name, kernel="exits")
    message = str(caught.value)
    assert message.startswith("01_data_prep.ipynb did not start: its Jupyter kernel 'exits' exited before")
