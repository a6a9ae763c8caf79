"""One Markdown table of what benchmarks/gpu.sh measured, with the date: python benchmarks/gpu_table.py RESULTS_DIR

Reads the JSON files the GPU benchmarks wrote (pretrain.json, media.json, embed-*.json) and the
pytest summary (pytest.txt); a part that has not run yet shows as such. Prints only measured values.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def table(results: Path) -> str:
    machine = (results / "machine.txt").read_text().strip() if (results / "machine.txt").exists() else "?"
    lines = [f"mediafm on a GPU, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {machine}", "",
             "| part | measurement | value |", "|---|---|---|"]

    def add(part: str, what: str, value: str) -> None:
        lines.append(f"| {part} | {what} | {value} |")

    pre = _load(results / "pretrain.json")
    if pre is None:
        add("(a) pretrain", "base at 512 shots", "not run")
    else:
        peak = f"{pre['peak_flops'] / 1e12:.0f} TFLOP/s" if pre.get("peak_flops") else "unknown"
        for r in pre["rows"]:
            add("(a) pretrain", f"{r['run']}, {r['batch']} x {r['shots']}",
                f"{r['shots_per_s']:,.0f} shots/s, {r['tokens_per_s']:,.0f} tokens/s, {r['model_tflops']:.3g} TFLOP/s, "
                f"MFU {_pct(r.get('mfu'))} (dense bf16 peak {peak}), step {1e3 * r['step_s']:.1f} ms, "
                f"peak memory {r['peak_mem']}, padding {_pct(r['padding'])}")
        p = pre.get("profile") or {}
        if p.get("gpu_busy_share") is not None:
            kinds = ", ".join(f"{k} {v:.1f}" for k, v in p["kernel_ms_per_step"].items())
            add("(a) profile", "first row: GPU kernel time per step",
                f"{p['gpu_busy_ms_per_step']:.1f} of {p['wall_ms_per_step']:.1f} ms ({_pct(p['gpu_busy_share'])} busy); "
                f"ms by kind: {kinds}")
    media = _load(results / "media.json")
    if media is None:
        add("(b) ingest + encode", "1080p title", "not run")
    else:
        add("(b) decode", "CPU, all cores (frames only / scaled to 48x27)",
            f"{media['cpu_decode_fps']:.0f} / {media['cpu_decode_scale_fps']:.0f} frames/s")
        hw = media["hw_decode"] + (f", {media['hw_decode_fps']:.0f} frames/s" if "hw_decode_fps" in media else "")
        add("(b) decode", "PyAV hardware decoding (CUDA)", hw)
        for device, r in media["runs"].items():
            if "error" in r:
                add("(b) ingest + encode", device, f"failed: {r['error'][:120]}")
                continue
            where = r["gpu"] if r["gpu"] else f"CPU, {r['cpu_threads']} torch threads of {r['cpu_cores']} cores"
            enc = ", ".join(f"{k} {v:.2f} s" for k, v in r["encoder_s"].items())
            add("(b) ingest + encode", f"{r['title_s']:.1f} s title ({Path(media['title']).stem}) on {where}",
                f"**{r['realtime']:.1f}x realtime** (ingest {r['ingest_s']:.1f} s = {r['ingest_realtime']:.1f}x, "
                f"encode {r['encode_s']:.1f} s; {r['shots']} shots; encoders alone: {enc}; MiniLM: {r['text_weights']}; "
                f"peak GPU memory {r['peak_gpu_mem']})")
    for device in ("cuda", "cpu"):
        e = _load(results / f"embed-{device}.json")
        if e is None:
            add("(c) embed", device, "not run")
            continue
        add("(c) embed", f"{e['preset']} on {e['device']}, {e['titles']} titles x 600 shots, read-out {e['readout']}",
            f"{e['end_to_end_shots_per_s']:,.0f} shots/s end to end (model alone {e['model_shots_per_s']:,.0f})")
    tests = results / "pytest.txt"
    summary = "not run"
    if tests.exists():
        tail = [ln for ln in tests.read_text().splitlines() if ln.strip()]
        summary = tail[-1].strip("= ") if tail else "no output"
    add("(d) tests", "pytest -m gpu", summary)
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/mediafm-gpu/results")))
