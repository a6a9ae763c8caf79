"""Render a latent story to real media: H.264 video + AAC audio (PyAV), SRT subtitles, NAME.json.

Pictures: each location has a two-colour palette and a texture (stripes, checks, dots, waves,
rings, blobs) with two reverse angles; establishing shots are wide views with a horizon and
buildings; character shots put the character's shape and colour large in frame over the location.
Tone shows as a colour tint and brightness, genre as an overlay motif, tension as camera shake,
each drawn from the shot's (noisy) cues. Sound: a location ambience (filtered noise), a chord whose
harmony follows the shot's tone cue, loudness following tension, and a voiced buzz at the speaking
character's pitch during dialogue. Cuts are hard cuts between visually different images, so a
shot detector (TransNetV2) finds them, except the scene changes a story marks as dissolves or fades
(`TitleStory.transitions`, off in the default catalog): those blend across the cut, picture and
sound, centred on it so that shot timings do not move.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pysubs2
from PIL import Image, ImageDraw

from mediafm.synth.story import GENRES, N_CHARACTERS, N_LOCATIONS, TONES, ShotSpec, TitleStory, TransitionSpec

AUDIO_RATE = 16_000


@dataclass(frozen=True)
class RenderConfig:
    width: int = 320
    height: int = 180
    crf: int = 23  # x264 quality; static synthetic pictures compress well
    preset: str = "veryfast"


# ------------------------------------------------------------------ fixed world (seeded once)
def _world() -> dict:
    rng = np.random.default_rng(1234)  # the world is the same for every catalog seed
    locations = []
    for i in range(N_LOCATIONS):
        hue = (i / N_LOCATIONS + rng.uniform(-0.03, 0.03)) % 1.0
        locations.append({
            "c1": _hsv(hue, rng.uniform(0.4, 0.9), rng.uniform(0.5, 0.9)),
            "c2": _hsv((hue + rng.uniform(0.3, 0.6)) % 1.0, rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.8)),
            "texture": i % 6,
            "freq": rng.uniform(4, 14),
            "angle": rng.uniform(0, np.pi),
            "noise_cut": rng.uniform(0.02, 0.4),  # ambience low-pass strength
            "hum": rng.uniform(60, 200),  # ambience hum frequency (Hz)
        })
    characters = []
    for i in range(N_CHARACTERS):
        characters.append({
            "shape": i % 5,
            "colour": _hsv(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)),
            "pitch": rng.uniform(110, 260),
        })
    return {"locations": locations, "characters": characters}


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    import colorsys
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


WORLD = _world()
TONE_TINT = {"calm": (0.55, 0.7, 1.0), "tense": (1.0, 0.45, 0.4), "joyful": (1.0, 0.95, 0.45), "sad": (0.6, 0.6, 0.65)}
TONE_BRIGHT = {"calm": 0.95, "tense": 0.75, "joyful": 1.1, "sad": 0.7}
# Chords as semitone offsets above a root: major (joyful), minor (sad), tritone cluster (tense), open fifth (calm).
TONE_CHORD = {"calm": (0, 7), "tense": (0, 1, 6), "joyful": (0, 4, 7, 12), "sad": (0, 3, 7)}
TONE_ROOT = {"calm": 196.0, "tense": 147.0, "joyful": 262.0, "sad": 175.0}


# ------------------------------------------------------------------ pictures
def _texture(loc: dict, angle: int, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = xx / w, yy / h
    a = loc["angle"] + angle * np.pi / 2
    u = x * np.cos(a) + y * np.sin(a)
    f = loc["freq"] * (1.0 + 0.5 * angle)
    t = loc["texture"]
    if t == 0:
        m = (np.sin(2 * np.pi * f * u) > 0).astype(np.float32)
    elif t == 1:
        m = ((np.floor(x * f) + np.floor(y * f * h / w * 1.8)) % 2).astype(np.float32)
    elif t == 2:
        m = ((np.sin(2 * np.pi * f * x) * np.sin(2 * np.pi * f * y * h / w * 1.8)) > 0.5).astype(np.float32)
    elif t == 3:
        m = 0.5 + 0.5 * np.sin(2 * np.pi * f * (u + 0.05 * np.sin(2 * np.pi * 3 * y)))
    elif t == 4:
        r = np.hypot(x - 0.5 - 0.2 * angle, (y - 0.5) * h / w)
        m = 0.5 + 0.5 * np.sin(2 * np.pi * f * r * 2)
    else:
        small = rng.random((max(2, h // 20), max(2, w // 20))).astype(np.float32)
        m = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32) / 255
    c1, c2 = (loc["c1"], loc["c2"]) if angle == 0 else (loc["c2"], loc["c1"])
    return c1 * m[..., None] + c2 * (1 - m[..., None])


def _draw_character(img: Image.Image, char: dict, angle: int) -> None:
    w, h = img.size
    d = ImageDraw.Draw(img)
    cx = int(w * (0.38 if angle == 0 else 0.62))
    cy, r = int(h * 0.55), int(h * 0.36)
    col = tuple(int(255 * c) for c in char["colour"])
    dark = tuple(int(0.3 * c) for c in col)
    box = (cx - r, cy - r, cx + r, cy + r)
    shape = char["shape"]
    if shape == 0:
        d.ellipse(box, fill=col, outline=dark, width=4)
    elif shape == 1:
        d.rectangle(box, fill=col, outline=dark, width=4)
    elif shape == 2:
        d.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=col, outline=dark)
    elif shape == 3:
        d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=col, outline=dark)
    else:
        d.ellipse(box, fill=col, outline=dark, width=4)
        d.ellipse((cx - r // 2, cy - r // 2, cx + r // 2, cy + r // 2), fill=dark)
    # Eyes look towards the other character (reverse angles face each other).
    ex = cx + (r // 4 if angle == 0 else -r // 4)
    for dx in (-r // 5, r // 5):
        d.ellipse((ex + dx - 6, cy - r // 3 - 6, ex + dx + 6, cy - r // 3 + 6), fill=(255, 255, 255))
        d.ellipse((ex + dx - 2, cy - r // 3 - 2, ex + dx + 2, cy - r // 3 + 2), fill=(0, 0, 0))


def _draw_establishing(base: np.ndarray, loc: dict, rng: np.random.Generator) -> Image.Image:
    h, w, _ = base.shape
    sky = np.linspace(1.0, 0.6, h)[:, None, None] * (0.5 * loc["c2"] + 0.5)
    horizon = int(h * rng.uniform(0.45, 0.6))
    arr = base.copy()
    arr[:horizon] = sky[:horizon]
    img = Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    col = tuple(int(255 * c * 0.6) for c in loc["c1"])
    x = 0
    while x < w:  # a skyline of buildings/trees in the location's colour
        bw = int(rng.integers(w // 14, w // 6))
        bh = int(rng.integers(h // 8, horizon - 5))
        d.rectangle((x, horizon - bh, x + bw, horizon), fill=col)
        x += bw + int(rng.integers(2, w // 12))
    return img


def _motif(img: Image.Image, genre: str, rng: np.random.Generator) -> None:
    w, h = img.size
    d = ImageDraw.Draw(img, "RGBA")
    if genre == "action":
        for _ in range(6):
            y = int(rng.integers(0, h))
            d.line((0, y, w, y - h // 3), fill=(255, 255, 255, 120), width=3)
    elif genre == "comedy":
        for _ in range(25):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            c = tuple(int(v) for v in rng.integers(80, 256, 3))
            d.ellipse((x - 4, y - 4, x + 4, y + 4), fill=(*c, 200))
    elif genre == "drama":
        d.rectangle((0, 0, w, h // 9), fill=(0, 0, 0, 255))
        d.rectangle((0, h - h // 9, w, h), fill=(0, 0, 0, 255))
    elif genre == "horror":
        for _ in range(4):
            x = int(rng.integers(0, w))
            d.line((x, 0, x + int(rng.integers(-30, 30)), h), fill=(120, 0, 0, 150), width=2)
        d.rectangle((0, 0, w, h), fill=(0, 0, 0, 60))
    else:  # romance
        for _ in range(8):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            d.ellipse((x - 7, y - 6, x, y + 1), fill=(255, 120, 170, 170))
            d.ellipse((x, y - 6, x + 7, y + 1), fill=(255, 120, 170, 170))
            d.polygon([(x - 7, y - 2), (x + 7, y - 2), (x, y + 8)], fill=(255, 120, 170, 170))


def shot_image(shot: ShotSpec, story: TitleStory, cfg: RenderConfig, pad: int) -> np.ndarray:
    """The shot's picture, `pad` pixels larger on each side so camera moves can crop into it."""
    rng = np.random.default_rng([story.seed, int(story.title.rsplit("_", 1)[-1]), shot.index])
    scene = story.scenes[shot.scene]
    loc = WORLD["locations"][scene.location]
    w, h = cfg.width + 2 * pad, cfg.height + 2 * pad
    base = _texture(loc, shot.angle, w, h, rng)
    if shot.kind == "establishing":
        img = _draw_establishing(base, loc, rng)
    else:
        img = Image.fromarray((np.clip(base, 0, 1) * 255).astype(np.uint8))
        _draw_character(img, WORLD["characters"][shot.character], shot.angle)
    _motif(img, shot.genre_cue, rng)
    arr = np.asarray(img, dtype=np.float32) / 255
    tint = np.asarray(TONE_TINT[shot.tone_cue], dtype=np.float32)
    arr = (0.7 * arr + 0.3 * arr * tint) * TONE_BRIGHT[shot.tone_cue]
    return (np.clip(arr, 0, 1) * 255).astype(np.uint8)


def shot_frames(shot: ShotSpec, story: TitleStory, cfg: RenderConfig) -> np.ndarray:
    """[n_frames, H, W, 3] uint8: a slow pan plus a sway whose amplitude grows with tension.

    The camera moves at most about a pixel per frame, so motion inside a shot never looks like a cut.
    """
    pad = 12
    img = shot_image(shot, story, cfg, pad)
    tension = story.scenes[shot.scene].tension
    rng = np.random.default_rng([story.seed, shot.index, 7])
    dx0, dy0 = rng.uniform(-1, 1, 2)
    phase = rng.uniform(0, 2 * np.pi, 2)
    out = np.empty((shot.n_frames, cfg.height, cfg.width, 3), dtype=np.uint8)
    for i in range(shot.n_frames):
        p = i / max(1, shot.n_frames - 1) - 0.5
        sway = 3.0 * tension * np.sin(2 * np.pi * i / story.fps * 0.8 + phase)  # ~0.8 Hz
        x = int(round(np.clip(pad + dx0 * 6 * p + sway[0], 0, 2 * pad)))
        y = int(round(np.clip(pad + dy0 * 4 * p + sway[1], 0, 2 * pad)))
        out[i] = img[y:y + cfg.height, x:x + cfg.width]
    return out


# ------------------------------------------------------------------ transitions
def _ramp(n: int) -> np.ndarray:
    """Mid-point positions 0..1 of n steps across a transition (never exactly 0 or 1)."""
    return (np.arange(n) + 0.5) / n


def _fade_gain(before: int, after: int) -> np.ndarray:
    """Gain of a fade: down towards black over `before` steps, up again over `after` (never 0)."""
    return np.concatenate([_ramp(before)[::-1], _ramp(after)])


def blend_transition(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """The frames of a transition window, cut at frame len(a) // 2.

    Args:
        a: [n, H, W, 3] uint8, the outgoing shot (its last frames, then its last frame held).
        b: [n, H, W, 3] uint8, the incoming shot (its first frame held, then its first frames).
        kind: "dissolve" (cross-fade from a to b) or "fade" (a fades to black, b fades in).
    Returns:
        [n, H, W, 3] uint8.
    """
    n, before = len(a), len(a) // 2
    if kind == "dissolve":
        alpha = _ramp(n)[:, None, None, None]
        out = (1 - alpha) * a + alpha * b
    elif kind == "fade":
        gain = _fade_gain(before, n - before)[:, None, None, None]
        out = gain * np.concatenate([a[:before], b[before:]])
    else:
        raise ValueError(f"unknown transition kind {kind!r}")
    return np.round(out).astype(np.uint8)


def _transition_window(t: TransitionSpec, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """The blended frames of transition t between the (unblended) frames of its two shots."""
    before = t.n_frames // 2
    after = t.n_frames - before
    a = np.concatenate([prev[len(prev) - before:], np.repeat(prev[-1:], after, axis=0)])
    b = np.concatenate([np.repeat(nxt[:1], before, axis=0), nxt[:after]])
    return blend_transition(a, b, t.kind)


def title_frames(story: TitleStory, cfg: RenderConfig | None = None) -> Iterator[np.ndarray]:
    """Every frame of the title in order, [H, W, 3] uint8, with its dissolves and fades applied.

    Renders shot by shot, one shot ahead (a transition needs the next shot's first frames), so at
    most three shots' frames are in memory whatever the title's length.
    """
    cfg = cfg if cfg is not None else RenderConfig()
    by_shot = {t.shot: t for t in story.transitions}
    shots = story.shots
    cur = shot_frames(shots[0], story, cfg)
    pending = None  # the incoming half of a transition, for the start of the next shot
    for k in range(len(shots)):
        nxt = shot_frames(shots[k + 1], story, cfg) if k + 1 < len(shots) else None
        frames = cur
        if pending is not None:
            frames = frames.copy()
            frames[:len(pending)] = pending
            pending = None
        t = by_shot.get(k + 1)
        if t is not None:
            window = _transition_window(t, cur, nxt)
            before = t.n_frames // 2
            frames = frames.copy() if frames is cur else frames
            frames[len(frames) - before:] = window[:before]
            pending = window[before:]
        yield from frames
        cur = nxt


# ------------------------------------------------------------------ sound
def shot_audio(shot: ShotSpec, story: TitleStory, n_samples: int) -> np.ndarray:
    rng = np.random.default_rng([story.seed, shot.index, 11])
    scene = story.scenes[shot.scene]
    loc = WORLD["locations"][scene.location]
    t = np.arange(n_samples) / AUDIO_RATE
    noise = rng.normal(0, 1, n_samples)
    # One-pole low-pass: the location's ambience colour.
    a = loc["noise_cut"]
    amb = np.empty(n_samples)
    acc = 0.0
    for i in range(0, n_samples, 256):  # blockwise for speed; exactness of the filter is irrelevant
        blk = noise[i:i + 256]
        amb[i:i + 256] = acc + np.cumsum(a * (blk - acc)) / np.arange(1, len(blk) + 1)
        acc = amb[min(i + 255, n_samples - 1)]
    amb = amb / (np.abs(amb).max() + 1e-9) * 0.15 + 0.05 * np.sin(2 * np.pi * loc["hum"] * t)
    root = TONE_ROOT[shot.tone_cue] * 2 ** (rng.integers(-2, 3) / 12)
    chord = sum(np.sin(2 * np.pi * root * 2 ** (k / 12) * t) for k in TONE_CHORD[shot.tone_cue])
    chord = chord / len(TONE_CHORD[shot.tone_cue])
    if shot.tone_cue == "tense":
        chord *= 0.6 + 0.4 * np.sin(2 * np.pi * 7 * t)  # tremolo
    loud = 0.25 + 0.45 * scene.tension
    sig = amb + loud * 0.5 * chord
    if shot.line:
        pitch = WORLD["characters"][shot.character]["pitch"]
        voice = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6))
        syll = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, 1)
        env = np.zeros(n_samples)
        a0, a1 = int(0.1 * AUDIO_RATE), max(int(0.1 * AUDIO_RATE) + 1, n_samples - int(0.1 * AUDIO_RATE))
        env[a0:a1] = 1.0
        sig = sig + 0.25 * voice * syll * env
    ramp = min(80, n_samples // 2)  # 5 ms de-click at the cut
    fade = np.ones(n_samples)
    fade[:ramp] = np.linspace(0, 1, ramp)
    fade[n_samples - ramp:] = np.linspace(1, 0, ramp)
    return (np.clip(sig * fade, -1, 1) * 0.8).astype(np.float32)


def title_audio(story: TitleStory) -> np.ndarray:
    """The title's soundtrack, mono float32 at AUDIO_RATE: shot by shot, cross-faded (equal power)
    under dissolves and faded to silence and back under fades."""
    fps = story.fps

    def sample(frame: int) -> int:
        return round(frame / fps * AUDIO_RATE)

    edges = [sample(s.start_frame) for s in story.shots] + [sample(story.n_frames)]
    windows = {t.shot: (sample(t.start_frame), sample(t.start_frame + t.n_frames), t.kind) for t in story.transitions}
    cuts = {t.shot: edges[t.shot] for t in story.transitions}
    out = np.zeros(edges[-1], dtype=np.float32)
    for k, shot in enumerate(story.shots):
        lo, hi = edges[k], edges[k + 1]
        enter, leave = windows.get(k), windows.get(k + 1)
        # A dissolve's two shots both sound through its window: each shot's audio extends across it.
        enter = enter if enter and enter[2] == "dissolve" else None
        leave = leave if leave and leave[2] == "dissolve" else None
        lo, hi = (enter[0] if enter else lo), (leave[1] if leave else hi)
        seg = shot_audio(shot, story, hi - lo)
        if enter:
            n = enter[1] - enter[0]
            seg[:n] *= np.sin(np.pi / 2 * _ramp(n))
        if leave:
            n = leave[1] - leave[0]
            seg[len(seg) - n:] *= np.cos(np.pi / 2 * _ramp(n))
        out[lo:hi] += seg
    for shot, (a, b, kind) in windows.items():
        if kind == "fade":
            out[a:b] *= _fade_gain(cuts[shot] - a, b - cuts[shot])
    return out


# ------------------------------------------------------------------ files
def render_title(story: TitleStory, out_dir: str | Path, cfg: RenderConfig | None = None) -> Path:
    """Write NAME.mp4, NAME.srt and NAME.json for one story into out_dir; returns the video path.

    Written to a temporary name and renamed, so an interrupted run leaves no half file behind.
    """
    cfg = cfg if cfg is not None else RenderConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / f"{story.title}.mp4"
    tmp = out_dir / f".{story.title}.tmp.mp4"
    fps = story.fps
    with av.open(str(tmp), "w") as container:
        # mbtree off: with x264's macroblock-tree rate control on, on a CPU where x264 uses its
        # AVX-512 kernels, the same frames encoded to different pixels from run to run (it
        # depended on the process's heap history, not on the input; mbtree off, or x264 limited
        # to AVX2, made every measured run byte-identical). A synthetic catalog must be
        # reproducible from its seed. Cost, measured on 3 titles at 320x180: files ~1.7x larger
        # at the same CRF (PSNR 30.1 vs 29.6 dB), encode time about the same.
        vs = container.add_stream("libx264", rate=fps, options={
            "crf": str(cfg.crf), "preset": cfg.preset, "mbtree": "0"})
        vs.width, vs.height, vs.pix_fmt = cfg.width, cfg.height, "yuv420p"
        as_ = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        audio = title_audio(story)
        for img in title_frames(story, cfg):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(pkt)
        for pkt in vs.encode():
            container.mux(pkt)
        step = 1024
        for i in range(0, len(audio), step):
            chunk = audio[i:i + step][None, :]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = AUDIO_RATE, i
            for pkt in as_.encode(frame):
                container.mux(pkt)
        for pkt in as_.encode():
            container.mux(pkt)
    tmp.replace(video)
    subs = pysubs2.SSAFile()
    for s in story.shots:
        if s.line:
            start, end = s.start_s(fps) + 0.1, s.end_s(fps) - 0.1
            subs.append(pysubs2.SSAEvent(start=int(start * 1000), end=int(end * 1000), text=s.line))
    subs.save(str(out_dir / f"{story.title}.srt"), format_="srt")
    meta = {"title": story.title.replace("_", " ").title(), "synopsis": story.synopsis,
            "tags": story.tags, "genres": story.meta_genres}
    (out_dir / f"{story.title}.json").write_text(json.dumps(meta, indent=1))
    return video


__all__ = ["RenderConfig", "render_title", "title_frames", "title_audio", "blend_transition", "shot_frames",
           "shot_image", "shot_audio", "GENRES", "TONES"]


# ------------------------------------------------------------------ catalog
@dataclass(frozen=True)
class CatalogInfo:
    root: Path
    videos: Path  # folder of NAME.mp4/.srt/.json, what `mediafm ingest` reads
    labels: Path  # folder of the five task CSVs
    titles: list[str]
    seconds: float  # wall time spent rendering in this call


def _render_one(args: tuple) -> str:
    index, seed, story_cfg, render_cfg, videos, truth = args
    from mediafm.synth.story import make_story
    story = make_story(index, seed, story_cfg)
    if not (videos / f"{story.title}.mp4").exists():
        render_title(story, videos, render_cfg)
    (truth / f"{story.title}.json").write_text(json.dumps(story.to_dict()))
    return story.title


def synthesize_catalog(root: str | Path, n_titles: int, seed: int = 0, story_cfg=None,
                       render_cfg: RenderConfig | None = None, workers: int = 1,
                       progress: bool = True, preset: str | None = None, first: int = 0) -> CatalogInfo:
    """Render titles first..n_titles-1 of catalog `seed` into root/videos, labels into root/labels.

    Titles already rendered are kept (re-running resumes); labels are rewritten for every title
    rendered. `first` > 0 gives more titles of the same catalog without its first ones, e.g. extra
    unlabelled pretraining data disjoint from a probed catalog. `preset` (the name story_cfg was
    built from, if any) is recorded in catalog.json.
    """
    if not 0 <= first < n_titles:
        raise ValueError(f"first ({first}) must be in [0, n_titles={n_titles})")
    render_cfg = render_cfg if render_cfg is not None else RenderConfig()
    import time
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from mediafm.synth.story import TASK_FILES, StoryConfig, labels_for, make_story
    from mediafm.evaluation.labels import write_labels

    story_cfg = story_cfg or StoryConfig()
    root = Path(root)
    videos, labels, truth = root / "videos", root / "labels", root / "truth"
    for d in (videos, labels, truth):
        d.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    jobs = [(i, seed, story_cfg, render_cfg, videos, truth) for i in range(first, n_titles)]
    bar = tqdm(total=len(jobs), desc="synth: render titles", unit="title", disable=not progress)
    titles: list[str] = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for title in pool.map(_render_one, jobs):
                titles.append(title)
                bar.update()
    else:
        for job in jobs:
            titles.append(_render_one(job))
            bar.update()
    bar.close()
    rows: dict[str, list] = {name: [] for name in TASK_FILES}
    for i in range(first, n_titles):
        for name, r in labels_for(make_story(i, seed, story_cfg), story_cfg).items():
            rows[name].extend(r)
    for name, (fname, _, _) in TASK_FILES.items():
        write_labels(labels / fname, rows[name])
    tasks = {name: {"file": f"labels/{f}", "task": k, "metric": m} for name, (f, k, m) in TASK_FILES.items()}
    manifest = {"generator": "mediafm synth", "preset": preset, "seed": seed, "n_titles": n_titles, "first": first,
                "tasks": tasks, "story_config": story_cfg.__dict__, "render_config": render_cfg.__dict__}
    (root / "catalog.json").write_text(json.dumps(manifest, indent=1))
    return CatalogInfo(root, videos, labels, titles, time.time() - t0)
