"""Notebook hygiene, the papermill runner, and every notebook end to end on the real ML-100k."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from harness import TINY, run_stage
from processes import run

from mtrec_helpers.core.paths import notebooks_dir, project_root
from mtrec_helpers.core.results import read_metrics
from mtrec_helpers.core.stages import STAGE_NAMES, STAGES
from mtrec_helpers.course.benchmark import main as benchmark_main
from mtrec_helpers.course.parameters import NotebookParameterError, check_declared_somewhere, parse_assignment
from mtrec_helpers.course.runner import (
    CELL_TIMEOUT_ENV,
    TIMINGS,
    KernelTransport,
    NotebookFailed,
    cell_timeout,
    kernel_transport,
    numbered_notebooks,
    run_notebook,
    run_pipeline,
)
from mtrec_helpers.course.runner import main as notebooks_main
from mtrec_helpers.data import load_processed

NOTEBOOKS = numbered_notebooks()


def test_notebooks_exist_in_reading_order() -> None:
    """The stage table names every notebook in the folder, in reading order."""
    assert [nb.name for nb in NOTEBOOKS] == [stage.notebook for stage in STAGES]
    assert sorted(p.name for p in notebooks_dir().glob("*.ipynb")) == [stage.notebook for stage in STAGES]
    numbers = [stage.number for stage in STAGES]
    assert all(re.fullmatch(r"\d\d[a-z]?", n) for n in numbers) and numbers == sorted(numbers)
    chapters = [int(n) for n in numbers if n.isdigit()]  # 02b sits between 02 and 03
    assert chapters == list(range(1, len(chapters) + 1))


def test_every_stage_reads_only_what_earlier_stages_write() -> None:
    written: set[str] = set()
    for stage in STAGES:
        assert set(stage.reads) <= written, (
            f"{stage.notebook} reads {set(stage.reads) - written} before it exists"
        )
        written |= set(stage.writes)


@pytest.mark.parametrize(
    "notebook", [*NOTEBOOKS, *sorted((project_root() / "solutions").glob("*.ipynb"))], ids=lambda p: p.name
)
def test_notebook_is_stored_clean(notebook: Path) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "strip the outputs"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert nb["metadata"]["kernelspec"]["name"] == "mtrec"
    assert nb["cells"][0]["cell_type"] == "markdown" and "".join(nb["cells"][0]["source"]).startswith("# ")
    assert "import" in "".join(code[0]["source"]), "imports belong in the first code cell"


def test_undeclared_parameter_is_refused_before_running(tmp_path: Path) -> None:
    output = tmp_path / "out.ipynb"
    with pytest.raises(NotebookParameterError, match="does not declare EPOCHS; its parameters are"):
        run_notebook(notebooks_dir() / "01_data_prep.ipynb", output, {"EPOCHS": 3})
    assert not output.exists()


def test_pipeline_refuses_an_override_no_notebook_declares(tmp_path: Path) -> None:
    with pytest.raises(NotebookParameterError, match="no notebook declares MIN_INTERACTION"):
        run_pipeline(NOTEBOOKS[:1], tmp_path, {}, {"MIN_INTERACTION": 3})


def test_gpu_settings_in_the_makefile_are_declared_by_the_notebooks() -> None:
    """`make run DEVICE=cuda` passes GPU_PARAMS; each must be a parameter some notebook declares."""
    makefile = (notebooks_dir().parent / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(row for row in makefile.splitlines() if row.startswith("GPU_PARAMS ?="))
    settings = dict(parse_assignment(word) for word in line.split("?=", 1)[1].split())
    assert settings["HIDDEN"] == 128 and settings["STUDENT_HIDDEN"] == [64, 48, 32, 16]
    # 04's simulator and learners run on the CPU whatever DEVICE is: a GPU must not enlarge them
    assert not {"ITERATIONS", "N_CANDIDATES", "POLICY_HIDDEN", "SLATEQ_ITERATIONS"} & set(settings)
    check_declared_somewhere(NOTEBOOKS, settings)
    with pytest.raises(NotebookParameterError, match="HIDEN"):
        check_declared_somewhere(NOTEBOOKS, {"HIDEN": 128})


def test_only_refuses_an_override_it_would_swallow(capsys: pytest.CaptureFixture[str]) -> None:
    """`--only 06 KEY=VALUE` would take the override as a notebook number and drop it silently."""
    with pytest.raises(SystemExit):
        notebooks_main(["--only", "06", "SCORE_MEMBERS=['ease']"])
    assert "put KEY=VALUE overrides before --only" in capsys.readouterr().err


def test_parse_assignment() -> None:
    assert parse_assignment("EPOCHS=3") == ("EPOCHS", 3)
    assert parse_assignment("LR=1e-3") == ("LR", 0.001)
    assert parse_assignment("TASKS=['next', 'rating']") == ("TASKS", ["next", "rating"])
    assert parse_assignment("DEVICE=cuda") == ("DEVICE", "cuda")


def test_failing_notebook_names_cell_and_executed_copy(tmp_path: Path) -> None:
    common = {"DATASET": "synthetic", "ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    with pytest.raises(NotebookFailed) as caught:
        run_pipeline(NOTEBOOKS[:1], tmp_path / "runs", common, {"MIN_INTERACTIONS": 10_000})
    message = str(caught.value)
    assert "01_data_prep.ipynb failed in cell" in message
    assert "DataError" in message and "the 10000-core of this dataset is empty" in message
    assert (tmp_path / "runs" / "01_data_prep.ipynb").is_file()
    assert str(tmp_path / "runs" / "01_data_prep.ipynb") in message


def test_a_cell_over_the_time_limit_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With MTREC_CELL_TIMEOUT set, a cell that does not finish (a stuck kernel) fails the run with
    the limit's name, instead of stalling it."""
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "3")
    notebook = tmp_path / "stuck.ipynb"
    cells = [nbformat.v4.new_code_cell("SECONDS = 60", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("import time; time.sleep(SECONDS)")]  # fmt: skip
    kernelspec = {"name": "mtrec", "display_name": "Python (mtrec)", "language": "python"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), notebook)
    with pytest.raises(NotebookFailed) as caught:
        run_notebook(notebook, tmp_path / "runs" / notebook.name)
    assert "a cell ran longer than MTREC_CELL_TIMEOUT=3 s" in str(caught.value)
    monkeypatch.setenv(CELL_TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="MTREC_CELL_TIMEOUT='soon': give a whole number of seconds"):
        cell_timeout()


def test_a_machine_that_never_ran_jupyter_runs_a_notebook(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    """Jupyter's runtime folder does not exist until some Jupyter program creates it: the runner creates
    it (private to the user) for its kernels' IPC sockets instead of letting the kernel die."""
    short = Path(tempfile.mkdtemp(prefix="mtrec-"))  # pytest's tmp_path can be too long for a socket path
    request.addfinalizer(lambda: shutil.rmtree(short, ignore_errors=True))
    runtime = short / "never" / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    assert kernel_transport() == KernelTransport("ipc", runtime)
    assert runtime.is_dir() and runtime.stat().st_mode & 0o777 == 0o700
    runtime.rmdir()
    common = {"DATASET": "synthetic", "ARTIFACTS_DIR": str(tmp_path / "artifacts")}
    run_pipeline(NOTEBOOKS[:1], tmp_path / "runs", common, {})
    assert (tmp_path / "artifacts" / "processed" / "manifest.json").is_file() and runtime.is_dir()
    assert "note:" not in capsys.readouterr().err


def test_kernels_fall_back_to_tcp_where_ipc_cannot_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runtime folder that cannot be created, or too long a path for a socket: TCP, with a note."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(blocker / "runtime"))
    transport = kernel_transport()
    assert transport.kind == "tcp" and f"{blocker / 'runtime'} cannot be created" in transport.note
    assert "JUPYTER_RUNTIME_DIR" in transport.note
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / ("x" * 120)))
    transport = kernel_transport()
    assert transport.kind == "tcp" and "too long a path for a socket" in transport.note
    output = run_notebook(NOTEBOOKS[0], tmp_path / "runs" / NOTEBOOKS[0].name,
                          {"DATASET": "synthetic", "ARTIFACTS_DIR": str(tmp_path / "artifacts")})  # fmt: skip
    assert output.is_file() and (tmp_path / "artifacts" / "processed" / "manifest.json").is_file()


def test_a_relative_artifacts_dir_override_is_relative_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m mtrec_helpers.course.runner ARTIFACTS_DIR=art` writes ./art, not notebooks/art."""
    monkeypatch.chdir(tmp_path)
    assert (
        notebooks_main(["DATASET=synthetic", "ARTIFACTS_DIR=art", "--runs-dir", "runs", "--only", "01"]) == 0
    )
    assert (tmp_path / "art" / "processed" / "manifest.json").is_file()
    assert not (notebooks_dir() / "art").exists()


CONTRACT = {"stage", "dataset", "device", "wall_time_s", "params", "results", "best"}


def stage_metrics(folder: Path, stage: str) -> dict:
    return read_metrics(folder / "artifacts", stage)


def test_end_to_end_pipeline_writes_every_stage(pipeline: Path) -> None:
    """Every stage's metrics.json has the contract's keys and a positive wall time; every executed
    copy and the final report are there."""
    for stage in STAGE_NAMES:
        metrics = stage_metrics(pipeline, stage)
        assert set(metrics) >= CONTRACT, f"{stage}: missing {CONTRACT - set(metrics)}"
        assert metrics["stage"] == stage and metrics["dataset"] == "ml-100k" and metrics["device"] == "cpu"
        assert metrics["wall_time_s"] > 0
    assert sorted(p.name for p in (pipeline / "runs").iterdir()) == sorted(
        [nb.name for nb in NOTEBOOKS] + [TIMINGS]
    )
    assert len(NOTEBOOKS) == 8
    timings = json.loads((pipeline / "runs" / TIMINGS).read_text())
    assert set(timings["notebooks"]) == {nb.stem for nb in NOTEBOOKS} and timings["peak_kernel_rss_mb"] > 100


def test_text_chapter_on_real_ml100k(pipeline: Path) -> None:
    """02b: MiniLM embeds the catalogue; the cold slice pools every fold's cold users (every user once)
    with the id-only fold model, the mapped ones and the content-only baseline; the dual path on 02's
    model keeps every trained item's rows when k = 0; choices are made on validation."""
    metrics = stage_metrics(pipeline, "text")
    n_items = stage_metrics(pipeline, "data_prep")["n_items"]
    assert metrics["text_model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(metrics["text_model"]["files_hash"]) == 64 and metrics["embed_seconds"] > 0
    folds = metrics["folds"]
    assert len(folds) == TINY["02b"]["COLD_FOLDS"] and sum(f["cold_items"] for f in folds) == n_items
    assert sum(f["cold_test_users"] for f in folds) == 943  # every user is cold in exactly one fold
    chosen = metrics["chosen"]
    assert chosen["features"] == max(
        chosen["cold_valid_ndcg@10"], key=chosen["cold_valid_ndcg@10"].__getitem__
    )
    priors = {float(k): v for k, v in chosen["prior_valid_ndcg@10"].items()}
    assert (
        chosen["prior"] == 0.0 or priors[chosen["prior"]] > priors[0.0]
    )  # changed only where validation says
    expected = {"cold": {"id_only", "text_aware", "genres", "content_only"},
                "long_tail": {"id_only", "text_aware", "content_only"},
                "overall": {"id_only", "text_aware", "content_only"}}  # fmt: skip
    for name, models in metrics["slices"].items():
        assert set(models) == expected[name], name
        for record in models.values():
            assert record["ndcg@10_ci"][0] <= record["ndcg@10"] <= record["ndcg@10_ci"][1]
            assert 0 <= record["ndcg@10"] <= record["hr@10"] <= 1
        for record in metrics["paired"][name].values():
            low, high = record["ndcg@10_diff_ci"]
            assert (
                low <= record["ndcg@10_diff"] <= high and record["ndcg@10_mde"] >= 0
            )  # 0: identical rankings
    assert all(record["ndcg@10_mde"] > 0 for record in metrics["paired"]["cold"].values())
    assert (
        metrics["slices"]["cold"]["id_only"]["n_users"]
        == metrics["slices"]["overall"]["id_only"]["n_users"]
        == 943
    )
    assert 0 < metrics["slices"]["long_tail"]["id_only"]["n_users"] < 943
    # the id-only fold models rank their withheld items by untrained rows: the mapped text ranks them better
    cold = metrics["slices"]["cold"]
    assert cold["text_aware"]["hr@10"] > cold["id_only"]["hr@10"]
    if chosen["prior"] == 0.0:  # every trained item keeps its id rows: 02's model on every warm test item
        overall = metrics["paired"]["overall"]["text_aware_vs_id_only"]
        assert abs(overall["ndcg@10_diff"]) < 0.002
    ensemble = stage_metrics(pipeline, "ensemble")
    assert "text_aware" in ensemble["results"] and "text_aware" in ensemble["alpha_shares"]
    assert set(ensemble["text_member"]) >= {"alpha_share", "ndcg@10_gain", "ndcg@10_gain_ci"}
    effect = stage_metrics(pipeline, "multitask")["user_text"]
    assert "genre_micro_f1" in effect and set(effect["genre_micro_f1"]) == {"without", "with", "difference"}


def test_pretraining_smoke_on_real_ml100k(pipeline: Path) -> None:
    """Tiny models, two epochs: the notebook runs end to end and both objectives beat chance."""
    metrics = stage_metrics(pipeline, "pretraining")
    names = {"pop", "itemknn", "ease", "bert4rec", "causal"}
    assert set(metrics["results"]) == names and set(metrics["results_no_exclusion"]) == names
    for record in metrics["results"].values():
        assert 0 <= record["ndcg@10"] <= record["hr@10"] <= 1
        assert record["ndcg@10_ci"][0] <= record["ndcg@10"] <= record["ndcg@10_ci"][1]
    n_items = stage_metrics(pipeline, "data_prep")["n_items"]
    chance_hr = 10 / (n_items - 100)  # a random ranking, even after excluding a long history
    for name in ("bert4rec", "causal"):
        assert metrics["training"][name]["valid_ndcg@10"] > 0
        best_hr = max(h["valid_hr@10"] for h in metrics["training"][name]["history"])
        assert best_hr > 3 * chance_hr, f"{name} does not beat a random ranking on validation"
        assert (pipeline / "artifacts" / "pretrained" / name / "model.safetensors").is_file()
    assert metrics["best"] in ("bert4rec", "causal")
    assert metrics["train_seq_per_s"]["causal"] > 0 and metrics["peak_memory_mb"] > 0
    assert metrics["results"]["ease"]["ndcg@10"] > metrics["results"]["pop"]["ndcg@10"]


def test_multi_scenario_smoke_on_real_ml100k(pipeline: Path) -> None:
    """Notebook 03b on the tiny models: every model per scenario with intervals over all users, the
    seesaw table smallest scenario first with its minimum detectable effects, the λ of each run, the
    record the explorer reads."""
    metrics = stage_metrics(pipeline, "multi_scenario")
    names = metrics["scenarios"]
    assert metrics["definition"] == "domain" and len(names) >= 2 and metrics["best"] in metrics["results"]
    results = metrics["per_scenario"]
    assert {"shared", "embedding", "star", "experts", "separate"} <= set(results)
    for record in results.values():
        assert list(record["scenarios"]) == names
        assert sum(row["n_users"] for row in record["scenarios"].values()) == 943
        for row in [*record["scenarios"].values(), record["overall"]]:
            assert row["ndcg@10_ci"][0] <= row["ndcg@10"] <= row["ndcg@10_ci"][1] <= row["hr@10"] <= 1
            assert 0 < row["like_auc"] < 1 and 0 < row["rating_rmse"] < 3
    for model, rows in metrics["seesaw"].items():
        sizes = [row["n_users"] for row in rows.values()]
        assert (
            model != "shared" and sizes == sorted(sizes) and min(sizes) >= TINY["03b"]["MIN_SCENARIO_USERS"]
        )
        assert all(r["diff_ci"][0] <= r["diff"] <= r["diff_ci"][1] and r["mde"] >= 0 for r in rows.values())
    dwa = next(epochs for name, epochs in metrics["lambdas"].items() if name.endswith("+dwa"))
    assert len(dwa) == 1 and set(dwa[0]) == {
        f"{s}/{t}" for s in names for t in metrics["params"]["SCENARIO_TASKS"]
    }
    recorded = json.loads(
        (pipeline / "artifacts" / "multi_scenario" / "domain.json").read_text(encoding="utf-8")
    )
    assert recorded["seesaw"] == metrics["seesaw"]
    # routing: each scenario served by the chosen model or shared, as validation says
    valid, best = metrics["valid"], metrics["best"]
    assert metrics["routes"] == {s: best if valid[best][s] > valid["shared"][s] else "shared" for s in names}
    for s, served in metrics["routes"].items():
        assert results["routed"]["scenarios"][s]["ndcg@10"] == results[served]["scenarios"][s]["ndcg@10"]
    # the chosen model is saved and joins 06's ensemble (scored over the whole catalogue)
    ensemble = stage_metrics(pipeline, "ensemble")
    assert ensemble["scenario_member"]["model"] == best and "multi_scenario" in ensemble["alpha_shares"]
    member = ensemble["results"]["multi_scenario"]
    assert member["ndcg@10_ci"][0] <= member["ndcg@10"] <= member["ndcg@10_ci"][1]
    assert member["ndcg@10"] > 3 * 10 / 1682  # well above a random ranking of the catalogue


def test_multitask_smoke_on_real_ml100k(pipeline: Path) -> None:
    """Every entry of the contract is there with sane values, the heads beat their trivial
    baselines, and the model is saved."""
    metrics = stage_metrics(pipeline, "multitask")
    results, trivial = metrics["results"], metrics["trivial_baselines"]
    mtl = ["mtl_fixed", "mtl_uncertainty", "mtl_gradnorm", "mtl_dwa"]
    assert set(results) >= {
        "pretrained",
        *[f"single_{t}" for t in ("next", "rating", "like", "genre", "profile")],
        *mtl,
    }
    assert set(metrics["paired_vs_pretrained"]) >= set(mtl)
    for name in mtl:
        record = results[name]
        assert record["ndcg@10_ci"][0] <= record["ndcg@10"] <= record["ndcg@10_ci"][1]
        assert 0 < record["ndcg@10"] <= record["hr@10"] <= 1
        assert 0.5 < record["like_auc"] <= 1 and record["rating_rmse"] < 2.0
        assert 0 <= record["profile_accuracy"] <= 1 and 0 <= record["genre_micro_f1"] <= 1
        diff = metrics["paired_vs_pretrained"][name]
        assert diff["ndcg@10_diff_ci"][0] <= diff["ndcg@10_diff"] <= diff["ndcg@10_diff_ci"][1]
    assert results["single_rating"]["rating_rmse"] < trivial["rating_rmse"] + 0.05
    assert results["single_like"]["like_auc"] > trivial["like_auc"] == 0.5
    assert {"rating_rmse", "like_auc", "genre_auc", "profile_accuracy", "ndcg@10"} <= set(trivial)
    assert metrics["best"] in results and metrics["best"].startswith("mtl_")
    assert "mtl_fixed_lora" in results and 0 < results["mtl_fixed_lora"]["trainable_share"] < 1
    assert (pipeline / "artifacts" / "multitask" / "model" / "model.safetensors").is_file()
    weights = metrics["histories"]["mtl_uncertainty"][0]
    assert {f"weight_{t}" for t in ("next", "rating", "like", "genre", "profile")} <= set(weights)


def test_rl_smoke_on_real_ml100k(pipeline: Path) -> None:
    """A few REINFORCE updates on the tiny multi-task model: both simulator variants, every agent,
    the contract's keys, sane values, the user model's held-out fit, the saved policy."""
    metrics = stage_metrics(pipeline, "rl")
    learners = {"reinforce", "slateq", "reinforce_offpolicy", "reinforce_offpolicy_uncorrected"}
    assert set(metrics["variants"]) == {"tuning", "heldout"}
    for records in metrics["variants"].values():
        assert set(records) == {"greedy", "random", "by_like", "myopic_oracle"} | learners
        for name, record in records.items():
            assert record["return_ci"][0] <= record["return_mean"] <= record["return_ci"][1]
            assert 0 <= record["clicks_mean"] <= record["length_mean"] <= 20
            assert 0 <= record["diversity_mean"] <= 1
            if name != "greedy":
                low, high = record["diff_vs_greedy_ci"]
                assert low <= record["diff_vs_greedy"] <= high
        assert records["random"]["return_mean"] < records["greedy"]["return_mean"]
        # the oracle reads the user model: at strength 0 no myopic policy earns more per step than it
        assert records["myopic_oracle"]["return_mean"] > records["greedy"]["return_mean"]
    assert metrics["best"] in learners
    for row in metrics["versus_oracle"].values():  # the chosen learner against the oracle, paired
        assert (
            row["diff_vs_myopic_oracle_ci"][0]
            <= row["diff_vs_myopic_oracle"]
            <= row["diff_vs_myopic_oracle_ci"][1]
        )
    # the phase diagram: every strength of the tiny sweep, both simulators, paired differences
    assert [p["strength"] for p in metrics["sweep"]] == TINY["04"]["HORIZON_STRENGTHS"]
    for point in metrics["sweep"]:
        for simulator in ("tuning", "heldout"):
            rows = point[simulator]
            assert {"reinforce", "slateq", "reinforce_offpolicy", "myopic_oracle", "greedy"} <= set(rows)
            low, high = rows["reinforce"]["gain_vs_myopic_oracle_pct_ci"]
            assert low <= rows["reinforce"]["gain_vs_myopic_oracle_pct"] <= high
    # the sweep's first seed evaluates on the main evaluation's sessions: at strength 8 the budget
    # moves with enjoyment, so the same greedy slates give sessions of other lengths
    strong = metrics["sweep"][0]["tuning"]["greedy"]
    assert strong["return_mean"] != metrics["variants"]["tuning"]["greedy"]["return_mean"]
    assert "planning_oracle" in metrics["sweep"][0]["tuning"]
    # off-policy evaluation: the logger on its own logs is exact in expectation and covered
    ope = metrics["ope"]
    assert ope["logger"]["ess_share"] == 1.0 and ope["logger"]["dr_covers"]
    assert all(0 < r["ess_share"] <= 1 and r["ips_ci"][0] <= r["ips_ci"][1] for r in ope.values())
    assert (
        len(metrics["learning_curves"]["reinforce"]) == 5 and len(metrics["learning_curves"]["slateq"]) == 3
    )
    user_model = metrics["user_model"]
    assert 0.6 < user_model["click_auc"] <= 1 and 0.5 < user_model["rating_rmse"] < 1.5
    assert 0.3 < user_model["attraction_scale"] < 3  # fitted on the validation choices
    assert user_model["choice_loglik_test"] > user_model["choice_loglik_test_uniform"]
    assert len(metrics["offpolicy_training"]["reinforce_offpolicy"]) == 2
    assert metrics["policy"] in learners - {"slateq"}
    assert (pipeline / "artifacts" / "rl" / "policy" / "policy.safetensors").is_file()


def test_distillation_smoke_on_real_ml100k(pipeline: Path) -> None:
    """Two tiny students and the ablation for one epoch each: the contract's keys and sane values."""
    metrics = stage_metrics(pipeline, "distillation")
    results = metrics["results"]
    assert {"teacher", "student_h8", "h8_alone", "h8_soft", "h8_alone_random_start"} == set(results)
    for record in results.values():
        assert record["params"] > 0 and record["size_bytes"] > 0 and record["throughput_users_per_s"] > 0
        assert record["ndcg@10_ci"][0] <= record["ndcg@10"] <= record["ndcg@10_ci"][1] <= 1
        assert 0 <= record["ndcg@10"] <= record["hr@10"] <= 1
    assert results["student_h8"]["params"] < results["teacher"]["params"]  # the smoke teacher is tiny too
    kmeans = metrics["kmeans"]
    assert kmeans["k"] in (3, 4) and abs(kmeans["inertia_torch"] / kmeans["inertia_sklearn"] - 1) < 0.01
    assert sum(kmeans["sizes"]) == 943 and metrics["best"] in results and metrics["best"] != "teacher"
    assert set(metrics["per_cluster_ndcg"]) == {str(c) for c in range(kmeans["k"])}
    assert (pipeline / "artifacts" / "distillation" / "model" / "model.safetensors").is_file()


LAUNCHED = {
    "02b": ("mtrec_helpers.text", "text", ("processed", "pretrained", "text"), {},
            {"fold0_id_only", "fold1_id_only"}, 1),
    "03": ("mtrec_helpers.multitask", "multitask", ("processed", "pretrained"),
           {"TASKS": ["next", "rating"], "ADAPTIVE": ["gradnorm"], "MMOE_EXPERTS": 2},
           {"single_next", "single_rating", "fixed_aux=0.3", "mtl_gradnorm", "mtl_fixed_mmoe",
            "mtl_fixed_lora"}, 2),
    "03b": ("mtrec_helpers.multi_scenario", "multi_scenario", ("processed", "pretrained", "multitask"),
            {"MODELS": ["star"], "SEPARATE": False, "WEIGHTINGS": ["dwa"]},
            {"shared", "star", "star+dwa"}, 2),
    "05": ("mtrec_helpers.distill", "distillation", ("processed", "multitask"), {},
           {"student_h8", "h8_alone", "h8_soft", "h8_alone_random_start"}, 2),
}  # fmt: skip
"""Per launched notebook: its module, stage, the folders it reads, settings beyond TINY, its runs, and
the processes it is launched on (02b on one: its trainings are 02's, on the same engine, whose
several-process runs test_distributed.py checks; the text cache comes along from the pipeline)."""


def _files(folder: Path) -> dict[Path, tuple[int, int]]:
    files = [path for path in folder.rglob("*") if path.is_file()]
    return {path: (path.stat().st_mtime_ns, path.stat().st_size) for path in files}


@pytest.mark.parametrize("number", sorted(LAUNCHED))
def test_two_process_launch_writes_the_runs_its_notebook_reuses(
    pipeline: Path, tmp_path: Path, number: str
) -> None:
    """`torchrun --nproc-per-node 2 -m mtrec_helpers.<stage>` trains every run of the notebook into its
    run folders; the notebook run afterwards (one process) finds each one finished and trains nothing."""
    module, stage, reads, extra, names, processes = LAUNCHED[number]
    settings = {**TINY[number], **extra}
    artifacts = tmp_path / "artifacts"
    for folder in reads:  # the stage's own results left behind; those it reads (03's choice) kept
        no_runs = shutil.ignore_patterns("runs", "text_aware", *(["metrics.json"] if folder == stage else []))
        shutil.copytree(pipeline / "artifacts" / folder, artifacts / folder, ignore=no_runs)
    assignments = [f"{key}={value!r}" for key, value in settings.items()]
    launched = run(["-m", module, "--artifacts-dir", str(artifacts), "--device=cpu", *assignments], processes)
    runs = artifacts / stage / "runs"
    user_text = {path.name for path in runs.iterdir() if path.name.endswith("+user_text")}
    assert len(user_text) == (number == "03"), launched.stdout  # 03's chosen configuration with user text
    names = names | user_text
    assert {path.name for path in runs.iterdir()} == names, launched.stdout
    assert all((runs / name / "checkpoint" / "engine.json").is_file() for name in names)
    written = _files(runs)
    notebook = next(nb for nb in NOTEBOOKS if nb.name.startswith(f"{number}_"))
    metrics = run_stage(notebook.name, stage, tmp_path, DEVICE="cpu", **settings)
    assert _files(runs) == written  # every run was found finished: no epoch trained, no checkpoint written
    histories = metrics.get("histories", {})
    assert number == "02b" or names <= set(histories)
    for name in names & set(histories):
        assert len(histories[name]) == settings["EPOCHS"]


def test_ensemble_smoke_on_real_ml100k(pipeline: Path) -> None:
    """Notebook 06 on the tiny models: every member and ensemble with the report's metrics and
    intervals, the paired tests against the best single model, the fitted weights, the report files."""
    metrics = stage_metrics(pipeline, "ensemble")
    members = {"pop", "itemknn", "ease", "bert4rec", "causal", "multitask", "student", "rl_reranker"}
    members |= {"text_aware", "multi_scenario"}  # 02b's text-aware model, 03b's chosen model
    ensembles = {"ensemble_softmax", "ensemble_uniform", "ensemble_rrf"}
    results = metrics["results"]
    assert set(results) == members | ensembles
    for name, record in results.items():
        for metric in ("ndcg@10", "hr@10", "mrr", "coverage@10", "diversity@10"):
            low, high = record[f"{metric}_ci"]
            assert 0 <= low <= record[metric] <= high <= 1, (name, metric)
        assert record["ndcg@10"] <= record["hr@10"] and record["n_users"] == 943
    assert metrics["best_single"] in members
    assert results[metrics["best_single"]]["ndcg@10"] == max(results[m]["ndcg@10"] for m in members)
    assert set(metrics["paired"]) == ensembles
    for record in metrics["paired"].values():
        low, high = record["ndcg@10_diff_ci"]
        assert low <= record["ndcg@10_diff"] <= high and record["b"] == metrics["best_single"]
    assert set(metrics["alphas"]) == members - {"rl_reranker"} and min(metrics["alphas"].values()) > 0
    assert metrics["fusion"]["valid_loss"] <= metrics["fusion"]["uniform_valid_loss"]
    assert results["ensemble_softmax"]["ndcg@10"] > results["pop"]["ndcg@10"]
    assert set(metrics["leave_one_out"]) == set(metrics["alphas"])
    assert metrics["student"].startswith(stage_metrics(pipeline, "distillation")["best"] + ":")
    report = {p.name for p in (pipeline / "artifacts" / "report").iterdir()}
    assert {
        "final_table.csv",
        "paired_vs_best_single.csv",
        "final_comparison.png",
        "fusion_weights.png",
    } <= report
    table = pd.read_csv(pipeline / "artifacts" / "report" / "final_table.csv", index_col="model")
    assert set(table.index) == set(results) and table["ndcg@10"].is_monotonic_decreasing


def test_data_prep_on_real_ml100k(real_ml100k: Path, tmp_path: Path) -> None:
    metrics = run_stage("01_data_prep.ipynb", "data_prep", tmp_path, MIN_INTERACTIONS=5)
    assert metrics["stage"] == "data_prep" and metrics["dataset"] == "ml-100k"
    assert metrics["raw"] == {
        "n_users": 943,
        "n_items": 1682,
        "n_interactions": 100_000,
        "n_items_in_catalogue": 1682,
    }
    assert metrics["n_users"] == 943  # every ML-100k user has at least 20 ratings
    assert 1300 < metrics["n_items"] < 1682  # the 5-core drops the rarest movies
    assert metrics["n_valid"] == metrics["n_test"] == 943
    assert metrics["n_train"] + metrics["n_valid"] + metrics["n_test"] == metrics["n_interactions"]
    assert metrics["wall_time_s"] > 0 and metrics["params"]["MIN_INTERACTIONS"] == 5

    data = load_processed(tmp_path / "artifacts" / "processed")
    frame = data.interactions
    per_user = frame.groupby("user_idx")["split"].value_counts().unstack()
    assert (per_user["valid"] == 1).all() and (per_user["test"] == 1).all()
    train_pairs = set(
        zip(
            frame.loc[frame["split"] == "train", "user_idx"],
            frame.loc[frame["split"] == "train", "item_idx"],
            strict=True,
        )
    )
    held_out = frame[frame["split"] != "train"]
    assert not any(
        pair in train_pairs for pair in zip(held_out["user_idx"], held_out["item_idx"], strict=True)
    )
    for _, user in frame.groupby("user_idx"):
        assert user["position"].tolist() == list(range(len(user)))
        assert user["timestamp"].is_monotonic_increasing
        last_train = user.loc[user["split"] == "train", "timestamp"].max()
        assert last_train <= user.loc[user["split"] == "valid", "timestamp"].item()
        assert (
            user.loc[user["split"] == "valid", "timestamp"].item()
            <= user.loc[user["split"] == "test", "timestamp"].item()
        )
    assert np.array_equal(np.sort(frame["item_idx"].unique()), np.arange(1, data.n_items + 1))


def test_benchmark_file_reads_the_run(pipeline: Path, tmp_path: Path) -> None:
    """`make bench`'s results file: machine, command, date, per-notebook wall times, the final table."""
    runs = tmp_path / "runs"
    runs.mkdir()
    seconds = {nb.stem: 10.0 + i for i, nb in enumerate(NOTEBOOKS)}
    (runs / TIMINGS).write_text(json.dumps({"notebooks": seconds, "peak_kernel_rss_mb": 900.0}))
    out = tmp_path / "benchmarks"
    arguments = ["--artifacts-dir", str(pipeline / "artifacts"), "--runs-dir", str(runs), "--out", str(out)]
    assert benchmark_main([*arguments, "--command", "make bench"]) == 0
    record = json.loads((tmp_path / "benchmarks" / "cpu-ml-100k.json").read_text())
    assert record["notebooks"]["02_transformer_pretraining"] == {"wall_s": 11.0}
    assert record["total_wall_s"] == sum(seconds.values()) and record["machine"]["cpu_count"] >= 1
    ensemble = stage_metrics(pipeline, "ensemble")
    assert (
        record["final_table"]["ensemble_softmax"]["ndcg@10"]
        == ensemble["results"]["ensemble_softmax"]["ndcg@10"]
    )
    assert record["command"] == "make bench" and record["date"].startswith("20")
    summary = (tmp_path / "benchmarks" / "cpu-ml-100k.md").read_text()
    assert "| softmax fusion (`ensemble_softmax`) | 06 |" in summary  # the row in words, its key in code
    # `make bench-scenarios`: one chapter's sections only, in a file of its own
    assert benchmark_main([*arguments, "--stages", "multi_scenario", "--suffix", "user_group"]) == 0
    scenario = json.loads((out / "cpu-ml-100k-user_group.json").read_text())
    assert list(scenario["stage_wall_s"]) == ["multi_scenario"] and "final_table" not in scenario
    assert scenario["multi_scenario"]["seesaw"] == stage_metrics(pipeline, "multi_scenario")["seesaw"]
    assert "Like AUC − shared's" in (out / "cpu-ml-100k-user_group.md").read_text()
