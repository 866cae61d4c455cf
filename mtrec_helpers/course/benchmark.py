"""`make bench`'s results file: a run's timings and final table with the machine and the command.

Writes ``benchmarks/<device>-<dataset>.json`` (hardware, software versions, command, date, every
notebook's wall time as `make run` measured it, each stage's time inside its notebook, the peak
memory of the notebook kernels, notebook 02's and notebook 06's test tables) and a short markdown
summary beside it; RESULTS.md and the README's chapter times are generated from these files (results_page).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mtrec_helpers.core.atomic import atomic_write_text
from mtrec_helpers.core.results import metrics_path, plain, read_metrics
from mtrec_helpers.core.stages import STAGES
from mtrec_helpers.course.runner import TIMINGS

TABLE_METRICS = ("ndcg@10", "hr@10", "mrr", "coverage@10", "diversity@10")
MULTITASK_METRICS = (
    "ndcg@10", "hr@10", "rating_rmse", "rating_mae", "like_auc", "like_logloss", "genre_micro_f1",
    "genre_auc", "profile_accuracy", "profile_macro_f1", "trainable_share", "train_seconds",
)  # fmt: skip
RL_KEYS = ("return_mean", "return_ci", "diff_vs_greedy", "diff_vs_greedy_ci")
DISTILL_METRICS = ("params", "size_bytes", "throughput_users_per_s", "ndcg@10", "hr@10", "valid_ndcg@10")


def machine() -> dict[str, Any]:
    """The hardware and software a benchmark ran on."""
    memory = next(
        (int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
         if line.startswith("MemTotal")), None,
    ) if Path("/proc/meminfo").is_file() else None  # fmt: skip
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_mb": memory,
        "gpu": gpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if gpu else None,
    }


def _table(results: dict[str, dict[str, Any]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The chosen metrics (and their intervals) of every model."""
    return {
        name: {key: record[key] for m in metrics for key in (m, f"{m}_ci") if key in record}
        for name, record in results.items()
    }


def results_name(device: str, dataset: str, preset: str = "default") -> str:
    """The results files' stem: ``<device>-<dataset>``, with ``-<preset>`` unless the preset is the
    default (e.g. cpu-ml-100k, cpu-ml-100k-class), as the Makefile's BENCH_NAME names the run."""
    return f"{device.split(':')[0]}-{dataset}" + ("" if preset == "default" else f"-{preset}")


def run_date(timings: Path) -> str:
    """When the run finished (its timings file is written last), so a results file re-read from the
    same run keeps the run's date."""
    finished = datetime.datetime.fromtimestamp(timings.stat().st_mtime, datetime.UTC)
    return finished.isoformat(timespec="seconds")


def benchmark_record(artifacts: Path, runs: Path, command: str) -> dict[str, Any]:
    """Everything the results file holds, read from the run's metrics.json files and timings."""
    timings = json.loads((runs / TIMINGS).read_text(encoding="utf-8"))
    stages = {
        s.name: read_metrics(artifacts, s.name) for s in STAGES if metrics_path(artifacts, s.name).is_file()
    }
    first = next(iter(stages.values()))
    record: dict[str, Any] = {
        "dataset": first["dataset"],
        "device": stages.get("pretraining", first)["device"],
        "machine": machine(),
        "command": command,
        "date": run_date(runs / TIMINGS),
        "notebooks": {name: {"wall_s": round(s, 1)} for name, s in timings["notebooks"].items()},
        "total_wall_s": round(sum(timings["notebooks"].values()), 1),
        "peak_kernel_rss_mb": timings["peak_kernel_rss_mb"],
        "stage_wall_s": {name: metrics["wall_time_s"] for name, metrics in stages.items()},
    }
    if "pretraining" in stages:
        record["pretraining"] = _table(stages["pretraining"]["results"], TABLE_METRICS)
        record["train_seq_per_s"] = stages["pretraining"].get("train_seq_per_s")
    if "text" in stages:
        text = stages["text"]
        record["text"] = {
            key: text[key]
            for key in ("text_model", "embed_seconds", "embeddings_cached", "id_dropout", "slices", "paired")
        }
        valid = {name: run["valid_ndcg@10"] for name, run in text["training"].items()}
        if "pretraining" in stages:  # 02's id-only causal model, the standard split's reference
            valid["id_only (02's causal)"] = stages["pretraining"]["training"]["causal"]["valid_ndcg@10"]
        record["text"]["valid_ndcg@10"] = valid
    if "multitask" in stages:
        multitask = stages["multitask"]
        record["multitask"] = {
            "results": _table(multitask["results"], MULTITASK_METRICS),
            "trivial": _table({"trivial": multitask["trivial_baselines"]}, MULTITASK_METRICS)["trivial"],
            "best": multitask["best"],
            "chosen_aux_lambda": multitask["chosen_aux_lambda"],
            "paired_vs_pretrained": multitask["paired_vs_pretrained"],
            "user_text": multitask.get("user_text", {}),
        }
    if "rl" in stages:
        record["rl"] = {
            "variants": {
                variant: {agent: {k: r[k] for k in RL_KEYS if k in r} for agent, r in agents.items()}
                for variant, agents in stages["rl"]["variants"].items()
            },
            "best": stages["rl"]["best"],
        }
    if "distillation" in stages:
        distillation = stages["distillation"]
        record["distillation"] = {
            "results": _table(distillation["results"], DISTILL_METRICS),
            "best": distillation["best"],
            "paired_vs_teacher": distillation["paired_vs_teacher"],
            "k": distillation["kmeans"]["k"],
        }
    if "ensemble" in stages:
        ensemble = stages["ensemble"]
        record["final_table"] = _table(ensemble["results"], TABLE_METRICS)
        record["best_single"] = ensemble["best_single"]
        record["paired_vs_best_single"] = {
            name: {k: v for k, v in pair.items() if k.startswith("ndcg@10")}
            for name, pair in ensemble["paired"].items()
        }
        record["text_member"] = ensemble.get("text_member")
    return plain(record)


def summary(record: dict[str, Any]) -> str:
    """A short markdown page of the results file."""
    lines = [
        f"# Benchmark: {record['dataset']} on {record['device']}",
        "",
        f"{record['date']} · `{record['command']}` · {record['machine']['cpu_count']} CPU cores, "
        f"{record['machine']['memory_mb']} MB, GPU: {record['machine']['gpu'] or 'none'} · torch "
        f"{record['machine']['torch']}",
        "",
        "| notebook | wall time (s) |",
        "|---|---|",
        *[f"| {name} | {value['wall_s']:.1f} |" for name, value in record["notebooks"].items()],
        f"| **all** | **{record['total_wall_s']:.1f}** |",
        "",
        f"Peak memory of a notebook kernel: {record['peak_kernel_rss_mb']:.0f} MB.",
    ]
    if "final_table" in record:
        lines += ["", "| model (test) | NDCG@10 [95% CI] | HR@10 | coverage@10 |", "|---|---|---|---|"]
        rows = sorted(record["final_table"].items(), key=lambda kv: -kv[1]["ndcg@10"])
        for name, row in rows:
            low, high = row["ndcg@10_ci"]
            lines.append(f"| {name} | {row['ndcg@10']:.4f} [{low:.4f}, {high:.4f}] | {row['hr@10']:.4f} | "
                         f"{row.get('coverage@10', float('nan')):.3f} |")  # fmt: skip
        for name, pair in record["paired_vs_best_single"].items():
            low, high = pair["ndcg@10_diff_ci"]
            diff = pair["ndcg@10_diff"]
            lines.append(f"\n{name} − {record['best_single']}: NDCG@10 {diff:+.4f} [{low:+.4f}, {high:+.4f}]")
    member = record.get("text_member")
    if member and member.get("ndcg@10_gain") is not None:
        lines.append(
            f"\nText-aware member in the fusion: α share {member['alpha_share']:.3f}; full fusion − fusion "
            f"without it: NDCG@10 {_with_interval(member, 'ndcg@10_gain', signed=True)}"
        )
    lines += _stage_summaries(record)
    return "\n".join(lines) + "\n"


def _stage_summaries(record: dict[str, Any]) -> list[str]:
    """The test tables of notebooks 03, 04 and 05 (those RESULTS.md shows per chapter)."""
    lines: list[str] = []
    if "text" in record:
        text = record["text"]
        seconds = (
            "read from the cache"
            if text["embeddings_cached"]
            else f"embedded in {text['embed_seconds']:.1f} s"
        )
        chosen = text["id_dropout"]
        lines += ["", f"Notebook 02b ({text['text_model']['name']}, {seconds}; ID_DROPOUT chosen on "
                  f"validation: {chosen['standard']} on the standard split, {chosen['cold']} in the "
                  "cold-start protocol), test NDCG@10 [95% CI]:", "",
                  "| slice | users | id_only | text_aware | content_only | text_aware − id_only | "
                  "text_aware − content_only |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, models in text["slices"].items():
            pairs = text["paired"][name]
            lines.append(
                f"| {name} | {models['id_only']['n_users']} | "
                + " | ".join(
                    _with_interval(models[m], "ndcg@10") for m in ("id_only", "text_aware", "content_only")
                )
                + " | "
                + " | ".join(
                    _with_interval(pairs[f"text_aware_vs_{b}"], "ndcg@10_diff", signed=True)
                    for b in ("id_only", "content_only")
                )
                + " |"
            )
        lines.append("\nValidation NDCG@10 (early stopping's best): " + ", ".join(
            f"{name} {value:.4f}" for name, value in text["valid_ndcg@10"].items()
        ))  # fmt: skip
    if "multitask" in record:
        multitask = record["multitask"]
        lines += ["", f"Notebook 03 (chosen: {multitask['best']}, λ = {multitask['chosen_aux_lambda']}):", "",
                  "| configuration | NDCG@10 [95% CI] | HR@10 | rating RMSE | like AUC | genre micro-F1 | "
                  "profile acc. / macro-F1 | paired vs pretrained |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        paired = multitask["paired_vs_pretrained"]
        for name, row in {**multitask["results"], "trivial": multitask["trivial"]}.items():
            pair = paired.get(name)
            lines.append(
                f"| {name} | {_with_interval(row, 'ndcg@10')} | {_number(row, 'hr@10')} | "
                f"{_number(row, 'rating_rmse')} | {_number(row, 'like_auc', 3)} | "
                f"{_number(row, 'genre_micro_f1', 3)} | "
                f"{_number(row, 'profile_accuracy', 3)} / {_number(row, 'profile_macro_f1', 3)} | "
                f"{_with_interval(pair, 'ndcg@10_diff', signed=True) if pair else '–'} |"
            )
    if record.get("multitask", {}).get("user_text"):
        effect = record["multitask"]["user_text"]
        lines.append("\nUser-interest text features in 03 (with − without): " + ", ".join(
            f"{name} {row['difference']:+.4f}" for name, row in effect.items()
        ))  # fmt: skip
    if "rl" in record:
        lines += ["", f"Notebook 04 (chosen: {record['rl']['best']}), Δ return vs greedy [95% CI]:", "",
                  "| agent | " + " | ".join(record["rl"]["variants"]) + " |",
                  "|---|" + "---|" * len(record["rl"]["variants"])]  # fmt: skip
        agents = next(iter(record["rl"]["variants"].values()))
        for agent in agents:
            cells = [
                f"{rows[agent]['return_mean']:.3f}" + (
                    f", {_with_interval(rows[agent], 'diff_vs_greedy', signed=True, digits=3)}"
                    if "diff_vs_greedy" in rows[agent] else ""
                )
                for rows in record["rl"]["variants"].values()
            ]  # fmt: skip
            lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    if "distillation" in record:
        distillation = record["distillation"]
        lines += ["", f"Notebook 05 (k = {distillation['k']}; chosen: {distillation['best']}):", "",
                  "| model | params | size (KB) | users/s | NDCG@10 [95% CI] | HR@10 | valid NDCG@10 |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, row in distillation["results"].items():
            lines.append(
                f"| {name} | {row['params']:,} | {row['size_bytes'] / 1024:.0f} | "
                f"{row['throughput_users_per_s']:,.0f} | {_with_interval(row, 'ndcg@10')} | "
                f"{_number(row, 'hr@10')} | {_number(row, 'valid_ndcg@10')} |"
            )
        pair = distillation["paired_vs_teacher"]
        lines.append(
            f"\n{distillation['best']} − teacher: NDCG@10 {_with_interval(pair, 'ndcg@10_diff', signed=True)}"
        )
    return lines


def _number(row: dict[str, Any], key: str, digits: int = 4) -> str:
    value = row.get(key)
    return "–" if value is None else f"{value:.{digits}f}"


def _with_interval(row: dict[str, Any], key: str, signed: bool = False, digits: int = 4) -> str:
    if row.get(key) is None:
        return "–"
    sign = "+" if signed else ""
    low, high = row[f"{key}_ci"]
    return f"{row[key]:{sign}.{digits}f} [{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def main(argv: Sequence[str] | None = None) -> int:
    """Write benchmarks/<device>-<dataset>[-<preset>].json and .md for one run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--artifacts-dir", required=True)
    parser.add_argument("--runs-dir", required=True)
    parser.add_argument("--out", default="benchmarks")
    parser.add_argument("--command", default="make bench")
    parser.add_argument("--preset", default="default", help="the preset the run used (named in the file)")
    args = parser.parse_args(argv)
    record = {
        **benchmark_record(Path(args.artifacts_dir), Path(args.runs_dir), args.command),
        "preset": args.preset,
    }
    stem = Path(args.out) / results_name(record["device"], record["dataset"], args.preset)
    atomic_write_text(stem.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    atomic_write_text(stem.with_suffix(".md"), summary(record))
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
