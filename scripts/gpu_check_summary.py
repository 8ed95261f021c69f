"""summary.txt and summary.json of a scripts/gpu_check.sh run, from its per-step files.

    python scripts/gpu_check_summary.py --logs OUT/logs --out OUT --device cuda --quick 0 --budget 470 --elapsed 412 \
        --status-of bench        # prints that step's status as the summary has it

Reads steps.tsv (one line per step: name, status, exit, seconds, command) and each step's log and
JSON; a step whose command exited 0 but whose expected output is missing or unreadable is reported
as failed. Standard library only (it runs with whatever Python ran the check).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable

# issue #7's GPU targets, next to what this run measured for each
TARGETS = [
    ("training 3x512, batch 256 (target step, charlstm), chars/s", 1_000_000, "target", "chars_per_s_at_batch_256"),
    ("training 3x512, batch 256, charlstm / bare cuDNN", 0.95, "target", "ratio_at_batch_256"),
    ("sampling batch 1 (sample_b1, the gpu3m run), chars/s", 10_000, "sample_b1", "chars_per_s"),
    ("sampling batch 256 (sample_b256, the gpu3m run), chars/s", 200_000, "sample_b256", "chars_per_s"),
]


class Missing(Exception):
    """The step ran but what it should have written is not there."""


def positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def last_json(text: str, what: str) -> dict:
    found = json_lines(text)
    if not found:
        raise Missing(f"no JSON line in the log ({what})")
    return found[-1]


def read_json(path: Path) -> dict:
    if not path.exists():
        raise Missing(f"{path.name} was not written")
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------- one parser per kind of step
def env(log: str, logs: Path, name: str) -> dict:
    return last_json(log, "the environment")


def install(log: str, logs: Path, name: str) -> dict:
    return last_json(log, "the install check")


def cuda_tests(log: str, logs: Path, name: str) -> dict:
    xml = logs / "cuda_tests.xml"
    if not xml.exists():
        raise Missing("cuda_tests.xml was not written")
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    if counts["tests"] == 0:
        raise Missing("pytest -m cuda selected no test")
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["names"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")]
    return counts


def bench(log: str, logs: Path, name: str) -> dict:
    r = read_json(logs / "bench.json")
    rows = []
    for p in r["presets"]:
        t, s = p["train"], p["sample"]
        rows.append({"preset": p["preset"], "model": f"{p['num_layers']}x{p['hidden_size']}",
                     "batch": f"{p['batch_size']}x{p['seq_len']}", "train_chars_per_s": t["charlstm_chars_per_s"],
                     "bare_chars_per_s": t["bare_chars_per_s"], "ratio": t["ratio"], "mfu": t["mfu"],
                     "sample_b1_chars_per_s": s["batch1_chars_per_s"], "sample_b64_chars_per_s": s["batch64_chars_per_s"],
                     "trace_chars_per_s": p["trace"]["chars_per_s"]})
        if not all(positive(rows[-1][k]) for k in ("train_chars_per_s", "bare_chars_per_s", "sample_b1_chars_per_s")):
            raise Missing(f"bench.json: preset {p['preset']} has a rate that is not a positive number")
    return {"device": r["device"].get("name"), "matmul_flops_fp32": r["machine"]["matmul_flops_fp32"],
            "matmul_flops_bf16": r["machine"]["matmul_flops_bf16"], "memory_bandwidth": r["machine"]["memory_bandwidth"],
            "presets": rows, "seconds": r["seconds"]}


def scaling(log: str, logs: Path, name: str) -> dict:
    r = read_json(logs / f"{name}.json")
    rows = [{"axis": x["axis"], "value": x["value"], "model": f"{x['num_layers']}x{x['hidden_size']}",
             "batch": f"{x['batch_size']}x{x['seq_len']}", "chars_per_s": x["charlstm_chars_per_s"],
             "bare_chars_per_s": x["bare_chars_per_s"], "ratio": x["ratio"], "mfu": x["mfu"],
             "peak_memory_mb": x["peak_memory_mb"]} for x in r["rows"]]
    if not rows or not all(positive(x["chars_per_s"]) and positive(x["bare_chars_per_s"]) for x in rows):
        raise Missing(f"{name}.json has no rows, or a rate that is not a positive number")
    out: dict[str, Any] = {"rows": rows}
    for x in rows:
        if x["axis"] == "batch_size" and x["value"] == 256:
            out["chars_per_s_at_batch_256"], out["ratio_at_batch_256"] = x["chars_per_s"], x["ratio"]
    return out


def data(log: str, logs: Path, name: str) -> dict:
    m = re.search(r"^Wrote .*$", log, re.M)
    if not m:
        raise Missing("no 'Wrote ...' line")
    return {"line": m.group(0)}


RUN_LINE = re.compile(r"^Run '(?P<run>[^']+)' [^:]*: (?P<steps>\d+) steps \([^)]*\) in (?P<seconds>[\d.]+)s"
                      r"(?:, (?P<rate>[\d.]+)(?P<k>k?) chars/s)?; best val (?P<bpc>[\d.]+) bpc.*$", re.M)


def train(log: str, logs: Path, name: str) -> dict:
    m = RUN_LINE.search(log)
    if not m:
        raise Missing("no final 'Run ...' line")
    metrics = logs / f"{name}.metrics.jsonl"
    if not metrics.exists():
        raise Missing(f"{metrics.name} was not copied")
    rows = json_lines(metrics.read_text())
    # training speed: the median log interval without a validation pass in it (a run too short to
    # have one: the final line's rate, which counts the evaluations too)
    rates = [r["chars_per_s"] for r in rows if "val_bpc" not in r and positive(r.get("chars_per_s"))]
    if not rates and m.group("rate"):
        rates = [float(m.group("rate")) * (1000 if m.group("k") else 1)]
    val = [r["val_bpc"] for r in rows if positive(r.get("val_bpc"))]
    if not rates or not val:
        raise Missing(f"{metrics.name} has no training rate or no validation bpc")
    cfg = json.loads((logs / f"{name}.config.json").read_text()) if (logs / f"{name}.config.json").exists() else {}
    model, tr = cfg.get("model", {}), cfg.get("train", {})
    out = {"line": m.group(0), "steps": int(m.group("steps")), "seconds": float(m.group("seconds")),
           "best_val_bpc": float(m.group("bpc")), "last_val_bpc": val[-1], "chars_per_s": statistics.median(rates),
           "intervals": len(rates),
           "model": f"{model.get('num_layers')}x{model.get('hidden_size')} {model.get('cell')}",
           "batch": f"{tr.get('batch_size')}x{tr.get('seq_len')}", "precision": tr.get("precision")}
    auto = re.search(r"^autosize: \d.*$", log, re.M)
    if auto:
        out["autosize"] = auto.group(0)
    return out


def eval_(log: str, logs: Path, name: str) -> dict:
    r = last_json(log, "charlstm eval --json")
    if not positive(r.get("bpc")):
        raise Missing("the eval JSON has no positive bpc")
    return {"bpc": r["bpc"], "scored": r["scored"], "source": r["source"]}


SAMPLE_LINE = re.compile(r"^seed (?P<seed>\d+) · (?P<chars>[\d,]+) characters in (?P<seconds>[\d.]+) s "
                         r"\((?P<rate>[\d,]+)/s\).*$", re.M)


def sample(log: str, logs: Path, name: str) -> dict:
    m = SAMPLE_LINE.search(log)
    if not m:
        raise Missing("no 'seed ... characters in ... s' line")
    out = {"line": m.group(0), "chars": int(m.group("chars").replace(",", "")), "seconds": float(m.group("seconds")),
           "chars_per_s": int(m.group("rate").replace(",", ""))}
    if name == "sample":
        out["text"] = log[:m.start()].strip()[:400]
    return out


PARSERS: dict[str, Callable[[str, Path, str], dict]] = {
    "env": env, "install": install, "cuda_tests": cuda_tests, "bench": bench, "target": scaling, "data": data,
    "train": train, "eval": eval_, "sample": sample, "sample_b1": sample, "sample_b256": sample,
    "amp_bf16": train, "amp_fp32": train}


def parser_for(name: str) -> Callable[[str, Path, str], dict] | None:
    return scaling if name.startswith("scaling_") else PARSERS.get(name)


# ----------------------------------------------------------------------------- the summary
def collect(logs: Path) -> list[dict]:
    steps = []
    with open(logs / "steps.tsv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            st = {"name": row["step"], "status": row["status"], "exit": None if row["exit"] == "-" else int(row["exit"]),
                  "seconds": float(row["seconds"]), "command": row["command"]}
            log_path = logs / f"{st['name']}.log"
            if log_path.exists():
                st["log"] = log_path.name
            parse = parser_for(st["name"])
            if parse is not None and log_path.exists():
                try:
                    st["result"] = parse(log_path.read_text(encoding="utf-8", errors="replace"), logs, st["name"])
                except (Missing, OSError, KeyError, TypeError, ValueError, ET.ParseError) as e:
                    if st["status"] == "ok":  # it exited 0 without what it should have written
                        st["status"] = f"failed: {e}"
            st["ok"] = st["status"] == "ok"
            steps.append(st)
    return steps


def comparisons(steps: list[dict]) -> dict:
    by = {s["name"]: s.get("result") or {} for s in steps}
    out: dict[str, Any] = {}
    bf, fp = by.get("amp_bf16", {}), by.get("amp_fp32", {})
    if bf and fp:
        out["amp"] = {"bf16_chars_per_s": bf["chars_per_s"], "fp32_chars_per_s": fp["chars_per_s"],
                      "speedup": bf["chars_per_s"] / fp["chars_per_s"], "steps": [bf["steps"], fp["steps"]],
                      "bf16_val_bpc": bf["last_val_bpc"], "fp32_val_bpc": fp["last_val_bpc"]}
    out["targets"] = [{"what": what, "target": target, "measured": by.get(step, {}).get(key),
                       "met": None if by.get(step, {}).get(key) is None else by[step][key] >= target}
                      for what, target, step, key in TARGETS]
    return out


def n(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def result_line(s: dict) -> str:
    r = s.get("result")
    if not r:
        return ""
    name = s["name"]
    if name == "env":
        return (f"python {r['python']}, torch {r['torch']}, " +
                (f"{r['gpu']} x{r['gpu_count']} ({r['gpu_memory_gb']} GB, sm {r['capability']}), cuDNN {r['cudnn']}"
                 if r.get("cuda_available") else "no CUDA"))
    if name == "install":
        return f"charlstm {r['charlstm']} in a temp folder; torch {r['torch']} is the machine's"
    if name == "cuda_tests":
        return f"{r['passed']} passed, {r['failures'] + r['errors']} failed, {r['skipped']} skipped (of {r['tests']})"
    if name == "bench":
        return "; ".join(f"{p['preset']} {p['model']}: train {n(p['train_chars_per_s'])}/s ({p['ratio']:.2f} of bare), "
                         f"sample b1 {n(p['sample_b1_chars_per_s'])}/s, b64 {n(p['sample_b64_chars_per_s'])}/s"
                         for p in r["presets"])
    if name == "target" or name.startswith("scaling_"):
        return "; ".join(f"{x['axis']}={x['value']}: {n(x['chars_per_s'])}/s ({x['ratio']:.2f} of bare)" for x in r["rows"])
    if name == "data":
        return r["line"]
    if name in ("train", "amp_bf16", "amp_fp32"):
        return (f"{r['model']}, batch {r['batch']}, {r['steps']} steps, {n(r['chars_per_s'])} chars/s (median), "
                f"val {r['last_val_bpc']:.4f} bpc")
    if name == "eval":
        return f"{r['bpc']:.4f} bpc on {r['scored']:,} characters ({r['source']})"
    if name.startswith("sample"):
        return f"{r['chars']:,} characters in {r['seconds']} s: {n(r['chars_per_s'])} chars/s"
    return ""


def write(out: Path, logs: Path, device: str, quick: bool, budget: int, elapsed: int) -> dict:
    steps = collect(logs)
    env_r = next((s.get("result") for s in steps if s["name"] == "env"), None) or {}
    summary = {"format": "charlstm-gpu-check", "version": 1, "device": device, "quick": quick, "budget_s": budget,
               "elapsed_s": elapsed, "ok": all(s["ok"] for s in steps), "machine": env_r, "steps": steps,
               **comparisons(steps)}
    width = max(len(s["name"]) for s in steps) if steps else 4
    bad = [s["name"] for s in steps if not s["ok"]]
    lines = [f"charlstm GPU check (scripts/gpu_check.sh): device {device}"
             f"{', quick CPU-sized mode: not a GPU measurement' if quick else ''}; "
             f"{elapsed} s of the {budget} s budget",
             f"{sum(s['ok'] for s in steps)} of {len(steps)} steps ok" + (f"; not ok: {', '.join(bad)}" if bad else ""),
             ""]
    for s in steps:
        lines.append(f"{s['name']:<{width}}  {s['seconds']:>6.1f}s  {s['status']}")
        if s.get("result"):
            lines.append(f"{'':<{width}}           {result_line(s)}")
    if "amp" in summary:
        a = summary["amp"]
        lines += ["", f"bf16 autocast vs fp32 (equal steps {a['steps'][0]}/{a['steps'][1]}): "
                      f"{n(a['bf16_chars_per_s'])} vs {n(a['fp32_chars_per_s'])} chars/s ({a['speedup']:.2f}x), "
                      f"val {a['bf16_val_bpc']:.4f} vs {a['fp32_val_bpc']:.4f} bpc"]
    lines += ["", "issue #7 targets" + (" (quick CPU mode: these sizes are not the targets' sizes)" if quick else "") + ":"]
    for t in summary["targets"]:
        got = "not measured" if t["measured"] is None else f"{n(t['measured'])} ({'met' if t['met'] else 'not met'})"
        lines.append(f"  {t['what']} >= {n(t['target'])}: {got}")
    lines += ["", f"per-step files: {logs} (all of them also in {out / 'logs.tar.gz'})"]
    tmp = out / "summary.json.part"
    tmp.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out / "summary.json")
    tmp = out / "summary.txt.part"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out / "summary.txt")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--quick", type=int, choices=(0, 1), default=0)
    ap.add_argument("--budget", type=int, required=True)
    ap.add_argument("--elapsed", type=int, required=True)
    ap.add_argument("--status-of", metavar="STEP", help="print this step's status (as the summary has it)")
    a = ap.parse_args()
    s = write(a.out, a.logs, a.device, bool(a.quick), a.budget, a.elapsed)
    if a.status_of:
        print(next((st["status"] for st in s["steps"] if st["name"] == a.status_of), "not run"))


if __name__ == "__main__":
    main()
