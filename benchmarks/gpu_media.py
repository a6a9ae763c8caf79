"""Ingest + encode of a 1080p title on a GPU and on the same machine's CPU cores, side by side.

    python benchmarks/gpu_media.py make --work DIR        # DIR/title1080.mp4 (+ .srt) from the montage, scaled
    python benchmarks/gpu_media.py run --work DIR [--json OUT]   # decode checks, then both pipelines

`make` scales every frame of tests/media/montage.mp4 (640x360, 97.4 s) to `--height` (1920x1080 by
default) with FFmpeg's bicubic scaler, encodes it with libx264 (CRF 18, preset veryfast), copies the
audio packets unchanged, and copies the subtitles beside it; also a 2-second clip for warming up.

`run` first decodes the title on the CPU (all cores: the frames only, then the frames scaled to
TransNetV2's 48x27 as ingest does) and tries PyAV's hardware decoding on the GPU
(`av.open(..., hwaccel=HWAccel("cuda", allow_software_fallback=False))`), saying whether it works
and how fast it decodes. Then, in one fresh process per device (`--device cuda`, then `cpu`),
after a warm-up on the short clip (weights loaded, ONNX exports cached, kernels chosen): ingest
(`process_title` + `write_result`: decode, TransNetV2, frame sampling, audio, subtitles) and encode
(`encode_titles` with an `EncoderSet` built beforehand, + writing features), each timed;
realtime factor = title duration / (ingest + encode). Per-encoder times on the same inputs follow,
outside the totals. Decoding and frame scaling run on the CPU in both (see the decode lines).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests" / "support")]  # mediafm_testing (test helpers, not in the wheel)

MONTAGE = REPO / "tests" / "media" / "montage.mp4"


# ----------------------------------------------------------------------------- make
def scale_video(src: Path, dst: Path, height: int, seconds: float | None = None) -> dict:
    """`src` with every frame scaled to `height` (16:9), H.264; audio packets copied as they are."""
    import av

    width = round(height * 16 / 9 / 2) * 2
    tmp = dst.with_suffix(".part.mp4")
    frames = 0
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        vin, ain = inp.streams.video[0], (inp.streams.audio[0] if inp.streams.audio else None)
        step = Fraction(1) / vin.average_rate
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.options = {"crf": "18", "preset": "veryfast"}
        aout = out.add_stream_from_template(ain) if ain is not None else None
        streams = [vin] + ([ain] if ain is not None else [])
        limit = None if seconds is None else seconds
        for packet in inp.demux(*streams):
            t = None if packet.pts is None else float(packet.pts * packet.time_base)
            if packet.stream is ain:
                if packet.dts is None or (limit is not None and t is not None and t > limit):
                    continue
                packet.stream = aout
                out.mux(packet)
                continue
            for frame in packet.decode():
                if limit is not None and frame.time is not None and frame.time > limit:
                    continue
                big = frame.reformat(width=width, height=height, format="yuv420p", interpolation="BICUBIC")
                big.pts, big.time_base = frames, step  # constant frame rate, numbered from 0
                out.mux(vout.encode(big))
                frames += 1
        out.mux(vout.encode(None))
    os.replace(tmp, dst)
    return {"path": str(dst), "width": width, "height": height, "frames": frames, "bytes": dst.stat().st_size}


def make(work: Path, height: int, src: Path = MONTAGE) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    title, warm = work / f"title{height}.mp4", work / f"warm{height}.mp4"
    info = {}
    t0 = time.perf_counter()
    if not title.exists():
        info = scale_video(src, title, height)
        shutil.copyfile(src.with_suffix(".srt"), title.with_suffix(".srt"))
    if not warm.exists():
        scale_video(src, warm, height, seconds=2.0)
    info.update(path=str(title), warm=str(warm), make_s=time.perf_counter() - t0)
    return info


# ----------------------------------------------------------------------------- decode checks
def decode_rates(path: Path) -> dict:
    """Frames/s decoding on the CPU (all cores): frames only, and frames scaled to 48x27 RGB."""
    import av

    from mediafm.media.decode import iter_frames

    out = {}
    t0 = time.perf_counter()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        n = sum(1 for _ in c.decode(s))
    out["cpu_decode_fps"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    n = sum(1 for f in iter_frames(path) if f.rgb(48, 27) is not None)
    out["cpu_decode_scale_fps"] = n / (time.perf_counter() - t0)
    out["frames"] = n
    return out


def hw_decode(path: Path, frames: int = 600) -> dict:
    """Whether PyAV decodes this title on the GPU (NVDEC through FFmpeg's CUDA hwaccel), and how fast."""
    import av
    from av.codec.hwaccel import HWAccel, hwdevices_available

    out = {"hwdevices": list(hwdevices_available())}
    try:
        t0 = time.perf_counter()
        with av.open(str(path), hwaccel=HWAccel(device_type="cuda", allow_software_fallback=False)) as c:
            s = c.streams.video[0]
            n, fmt = 0, None
            for f in c.decode(s):
                fmt = fmt or f.format.name
                f.reformat(width=48, height=27, format="rgb24").to_ndarray()
                n += 1
                if n >= frames:
                    break
        out.update(hw_decode="works", hw_decode_fps=n / (time.perf_counter() - t0), hw_frame_format=fmt)
    except Exception as exc:  # any failure is the answer: report it
        out.update(hw_decode=f"fails: {type(exc).__name__}: {str(exc)[:200]}")
    return out


# ----------------------------------------------------------------------------- one pipeline run
def pipeline(device: str, title: Path, warm: Path, work: Path) -> dict:
    import numpy as np
    import torch

    from mediafm.encoders.config import EncodeConfig
    from mediafm.encoders.encode_store import (
        EncoderSet,
        encode_audio_shots,
        encode_titles,
        encode_video_shots,
        read_inputs,
    )
    from mediafm.ingest.config import IngestConfig
    from mediafm.ingest.worker import process_title, write_result
    from mediafm.store.catalog import Store
    from mediafm_testing.gpu import minilm_weights

    cuda = device.startswith("cuda")
    store = Store(work / f"store-{device.replace(':', '')}", create=True)
    scratch = store.root / "scratch"
    scratch.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    text_weights, text_note = minilm_weights(work)
    config = IngestConfig(device=device)
    encoders = EncoderSet(EncodeConfig(device=device, text_weights=str(text_weights) if text_weights else None))
    warm_res = process_title(warm, config, scratch_dir=scratch)  # detector weights, kernels
    warm_res.discard()
    setup_s = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result = process_title(title, config, scratch_dir=scratch)
    media_s = result.media_s
    write_result(store, result)
    ingest_s = time.perf_counter() - t0
    tid = result.record.title_id
    t0 = time.perf_counter()
    inputs = read_inputs(store, tid)
    (cols,) = encode_titles(encoders, [inputs])
    store.write_features(tid, cols, encoders=encoders.identity())
    encode_s = time.perf_counter() - t0
    # Per encoder, on the same inputs (outside the totals).
    each = {}
    frames = [inputs.frames[i] for i in np.flatnonzero(inputs.video_present())]
    waves = [w for w in inputs.audio_slices() if w is not None]
    texts = [t for t in inputs.texts() if t]
    for name, fn in (("video", lambda: encode_video_shots(encoders.video, frames, 5, 64)),
                     ("audio", lambda: encode_audio_shots(encoders.audio, waves, 5, 64)),
                     ("text", lambda: encoders.text.encode(texts))):
        t = time.perf_counter()
        fn()
        each[name] = time.perf_counter() - t
    shots = len(inputs.shots)
    return {"device": device, "gpu": torch.cuda.get_device_name() if cuda else "", "cpu_threads": torch.get_num_threads(),
            "cpu_cores": os.cpu_count(), "title_s": media_s, "frames": result.record.n_frames, "shots": shots,
            "setup_s": setup_s, "ingest_s": ingest_s, "encode_s": encode_s,
            "realtime": media_s / (ingest_s + encode_s), "ingest_realtime": media_s / ingest_s,
            "encoder_s": each, "n_frames_encoded": int(sum(len(f) for f in frames)), "n_waves": len(waves),
            "n_texts": len(texts), "text_weights": text_note, "detector": result.record.detector,
            "peak_gpu_mem": f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "-"}


def run(work: Path, height: int, devices: list[str]) -> dict:
    title = work / f"title{height}.mp4"
    if not title.exists():
        raise FileNotFoundError(f"{title}: run `make` first")
    out = {"title": str(title), **decode_rates(title), **hw_decode(title)}
    print(f"decode on the CPU ({os.cpu_count()} cores): {out['cpu_decode_fps']:.0f} frames/s; with scaling to 48x27: "
          f"{out['cpu_decode_scale_fps']:.0f} frames/s ({out['frames']} frames)", flush=True)
    hw = out["hw_decode"] + (f" ({out['hw_decode_fps']:.0f} frames/s incl. download + scaling to 48x27, "
                             f"frames {out['hw_frame_format']})" if "hw_decode_fps" in out else "")
    print(f"PyAV hardware decoding on the GPU: {hw}; FFmpeg device types: {out['hwdevices']}", flush=True)
    out["runs"] = {}
    for device in devices:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            res_file = Path(f.name)
        cmd = [sys.executable, __file__, "pipeline", "--device", device, "--work", str(work), "--height", str(height),
               "--json", str(res_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout)[-1500:]
            print(f"pipeline on {device} FAILED:\n{tail}", flush=True)
            out["runs"][device] = {"error": tail[-300:]}
            continue
        r = json.loads(res_file.read_text())
        res_file.unlink()
        out["runs"][device] = r
        enc = ", ".join(f"{k} {v:.2f} s" for k, v in r["encoder_s"].items())
        print(f"{device:>5}: {r['title_s']:.1f} s title, {r['frames']} frames, {r['shots']} shots: ingest "
              f"{r['ingest_s']:.2f} s + encode {r['encode_s']:.2f} s = {r['realtime']:.1f}x realtime "
              f"(ingest alone {r['ingest_realtime']:.1f}x; encoders on the same inputs: {enc}; "
              f"setup {r['setup_s']:.1f} s; text weights: {r['text_weights']}; peak GPU memory {r['peak_gpu_mem']})",
              flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("make", "run", "pipeline"))
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--device", default="cuda", help="pipeline: the device of this run")
    ap.add_argument("--devices", default="cuda,cpu", help="run: the devices compared")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    if a.what == "make":
        res = make(a.work, a.height)
        print(f"title: {res['path']} ({res.get('frames', '?')} frames, made in {res['make_s']:.1f} s)")
    elif a.what == "pipeline":
        res = pipeline(a.device, a.work / f"title{a.height}.mp4", a.work / f"warm{a.height}.mp4", a.work)
    else:
        res = run(a.work, a.height, a.devices.split(","))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
