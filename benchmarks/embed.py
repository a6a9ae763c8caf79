"""`mediafm embed` throughput: shots/s end to end (read features, embed, write) and for the model alone.

    python benchmarks/embed.py --device cuda --preset base --titles 40 [--json out.json]
    python benchmarks/embed.py --device cpu --preset tiny --titles 4       # the same paths on a CPU

A synthetic store (random unit vectors, `--titles` titles of 600 shots, fused dim 2688) and a
randomly initialised model with pretraining's default read-out (`stack+title+input`: 13 x 768 +
2688 floats per shot for `base`), saved as `mediafm pretrain` saves one. "model" times
`MediaFM.embed_title` on features already in memory (windows of 512 shots, stride 256, float32);
"end to end" is `embed_store`, which also reads each title's features and writes its embeddings
(Parquet). Weights do not change the speed, so no training is needed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests" / "support")]  # mediafm_testing (test helpers, not in the wheel)

from mediafm.devices import resolve_device  # noqa: E402
from mediafm.model.transformer import PRESETS, MediaFM, load_pretrained, save_pretrained  # noqa: E402
from mediafm.store.catalog import Store  # noqa: E402
from mediafm.training.embed import embed_store  # noqa: E402
from mediafm_testing.synthetic import vector_store  # noqa: E402

FUSED_DIM = 2688


def run(device: str, preset: str, titles: int, shots_per_title: int, root: Path) -> dict:
    device = resolve_device(device)
    store_root, model_dir = root / "store", root / f"model-{preset}"
    if not (store_root / "features").exists():
        vector_store(store_root, titles * shots_per_title, dim=FUSED_DIM, shots_per_title=shots_per_title)
    cfg = PRESETS[preset](FUSED_DIM, 0)  # the preset's defaults are pretraining's (read-out, distance bias)
    torch.manual_seed(0)
    save_pretrained(MediaFM(cfg), model_dir)
    store = Store(store_root)
    tids = store.title_ids()[:titles]
    fused = [store.features(tid) for tid in tids]
    model = load_pretrained(model_dir, device=device)
    model.embed_title(fused[0][:64])  # first call: kernels, allocator
    t0 = time.perf_counter()
    for f in fused:
        model.embed_title(f)  # returns numpy: each call waits for the device
    model_s = time.perf_counter() - t0
    shots = sum(len(f) for f in fused)
    t0 = time.perf_counter()
    res = embed_store(store_root, model_dir, title_ids=tids, device=device, overwrite=True)
    e2e_s = time.perf_counter() - t0
    return {"device": device, "preset": preset, "titles": len(tids), "shots": shots, "readout": res.readout,
            "dim": res.dim, "model_shots_per_s": shots / model_s, "end_to_end_shots_per_s": res.shots / e2e_s,
            "end_to_end_s": e2e_s, "peak_mem": (f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
                                                if device.startswith("cuda") else "-")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--preset", default="base")
    ap.add_argument("--titles", type=int, default=40)
    ap.add_argument("--shots-per-title", type=int, default=600)
    ap.add_argument("--work", type=Path, help="folder for the store and model (default: a temporary one)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        r = run(a.device, a.preset, a.titles, a.shots_per_title, a.work or Path(tmp))
    print(f"embed {r['preset']} on {r['device']}: {r['titles']} titles, {r['shots']:,} shots, read-out {r['readout']} "
          f"({r['dim']}-d): model {r['model_shots_per_s']:,.0f} shots/s, end to end (embed_store) "
          f"{r['end_to_end_shots_per_s']:,.0f} shots/s, peak GPU memory {r['peak_mem']}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
