"""The latent story model of the synthetic narrative benchmark (pure: seeds in, dataclasses out).

A title has a genre and a tension arc. It is a sequence of scenes; a scene has a location, two of
the title's characters, a tone (drawn from the genre's tone prior, pulled towards `tense` when the
scene's tension is high) and a tension (the arc at the scene's position, plus noise). A scene is an
establishing shot of the location followed by shots alternating between its two characters.

Each shot shows its scene's tone and its title's genre only partially and noisily: every cue (tint,
motif, chord, dialogue words) is the true one with a probability below one and otherwise drawn at
random, so one shot alone is often ambiguous and its scene or title resolves it. Labels for five
tasks are functions of the latent story (see `labels_for`).

Catalog presets (`STORY_PRESETS`): `narrative`, the benchmark's short titles joined by hard cuts;
`long`, titles of 150-600 shots (minutes each) with dissolves and fades between some scenes; and
`subtle`, the narrative catalog where most scenes open without an establishing shot and half of
them stay where the previous scene was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from mediafm.evaluation.grid import TASKS

GENRES = ("action", "comedy", "drama", "horror", "romance")
TONES = ("calm", "tense", "joyful", "sad")
# P(tone | genre) before the tension pull; rows follow TONES.
GENRE_TONE_PRIOR = {
    "action": (0.20, 0.45, 0.25, 0.10),
    "comedy": (0.30, 0.10, 0.50, 0.10),
    "drama": (0.35, 0.20, 0.10, 0.35),
    "horror": (0.25, 0.55, 0.05, 0.15),
    "romance": (0.35, 0.10, 0.35, 0.20),
}
# The tone that makes a scene "clip-worthy" for each genre (used by popularity and retrieval).
SIGNATURE_TONE = {"action": "tense", "comedy": "joyful", "drama": "sad", "horror": "tense", "romance": "joyful"}
ARCS = ("rise", "peak", "valley", "double")
N_LOCATIONS = 12
N_CHARACTERS = 20
# Locations each genre prefers (a scene picks from these with probability GENRE_LOCATION_P).
GENRE_LOCATIONS = {"action": (0, 1, 2, 3), "comedy": (3, 4, 5, 6), "drama": (6, 7, 8, 9),
                   "horror": (9, 10, 11, 0), "romance": (5, 8, 2, 11)}
GENRE_LOCATION_P = 0.6


@dataclass(frozen=True)
class StoryConfig:
    """Sizes and noise levels of the latent model (defaults: the benchmark; the demo shortens titles)."""

    fps: int = 12  # frames per second of the rendered video
    min_scenes: int = 5
    max_scenes: int = 8
    min_shots_per_scene: int = 3  # including the establishing shot, where there is one
    max_shots_per_scene: int = 5
    # >= 16 frames: TransNetV2 merges cuts closer than its min_gap (15 frames), measured on our renders
    min_shot_frames: int = 18  # 1.5 s at 12 fps
    max_shot_frames: int = 30  # 2.5 s
    cue_p: float = 0.45  # probability that a shot's tone cue (tint/chord/words) is the scene's true tone
    genre_cue_p: float = 0.35  # probability that a shot's genre motif is the title's true genre
    tension_noise: float = 0.12  # sd of per-scene tension noise around the arc
    line_p: float = 0.7  # probability that a character shot has a dialogue line
    clips_per_title: int = 8  # candidate clips per title (half end at scene boundaries)
    # Shot budget per title; 0 = off (the scene count is drawn from min_scenes..max_scenes). When on,
    # scenes are added until a target drawn from min_shots..max_shots - max_shots_per_scene + 1 is
    # reached (within min_scenes..max_scenes), so a title has min_shots..max_shots shots.
    min_shots: int = 0
    max_shots: int = 0
    # Probability that a scene boundary is a dissolve or a fade (half each) instead of a hard cut.
    transition_p: float = 0.0
    min_transition_frames: int = 6  # a transition's length, centred on the cut
    max_transition_frames: int = 8
    # How visibly a scene change is marked: a scene opens with an establishing shot of its location
    # with probability establishing_p, and stays at the previous scene's location with probability
    # location_stay_p. The defaults mark every change both ways, which a model reads easily; films
    # often cut to a new scene in the same place, on a character, with no wide shot.
    establishing_p: float = 1.0
    location_stay_p: float = 0.0

    def __post_init__(self) -> None:
        pairs = [("min_scenes", "max_scenes"), ("min_shots_per_scene", "max_shots_per_scene"),
                 ("min_shot_frames", "max_shot_frames"), ("min_transition_frames", "max_transition_frames")]
        for lo, hi in pairs:
            if not 1 <= getattr(self, lo) <= getattr(self, hi):
                raise ValueError(f"need 1 <= {lo} <= {hi}, got {getattr(self, lo)} and {getattr(self, hi)}")
        if self.max_shots and not 1 <= self.min_shots <= self.max_shots - self.max_shots_per_scene + 1:
            raise ValueError(f"shot budget {self.min_shots}..{self.max_shots} leaves no room for a last scene "
                             f"of up to {self.max_shots_per_scene} shots")
        # Half of a transition lies on each side of its cut: it must fit inside the shorter shot.
        if self.transition_p and self.max_transition_frames > self.min_shot_frames:
            raise ValueError("max_transition_frames must not exceed min_shot_frames")
        for name in ("establishing_p", "location_stay_p", "transition_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")


def long_form() -> StoryConfig:
    """Long titles: 150-600 shots of 1.3-2 s (4-17 minutes at the mean), 30% of scene changes dissolve or fade."""
    return StoryConfig(min_scenes=1, max_scenes=200, min_shots_per_scene=3, max_shots_per_scene=8,
                       min_shot_frames=16, max_shot_frames=24, clips_per_title=24,
                       min_shots=150, max_shots=600, transition_p=0.3)


def subtle() -> StoryConfig:
    """The narrative catalog with scene changes rarely marked on screen: 25% of scenes open with an
    establishing shot and half stay at the previous scene's location, so where a scene ends must be
    read from who is in it, its tone and its sound rather than from a new place or a wide shot."""
    return StoryConfig(establishing_p=0.25, location_stay_p=0.5)


# Catalog presets by name (`mediafm synth --preset`); "narrative" is the benchmark's default.
STORY_PRESETS = {"narrative": StoryConfig(), "long": long_form(), "subtle": subtle()}
TRANSITION_KINDS = ("dissolve", "fade")


@dataclass
class ShotSpec:
    index: int
    scene: int
    kind: str  # "establishing" | "character"
    character: int  # global character id, -1 for establishing shots
    angle: int  # 0/1: reverse angles of a location alternate
    start_frame: int
    n_frames: int
    tone_cue: str  # tone shown by this shot's picture/sound (the scene's tone or a random one)
    genre_cue: str  # genre motif shown (the title's genre or a random one)
    line: str  # dialogue line ("" for none)
    words_tone: str  # tone hinted by the line's words ("" if no line)

    def start_s(self, fps: int) -> float:
        return self.start_frame / fps

    def end_s(self, fps: int) -> float:
        return (self.start_frame + self.n_frames) / fps


@dataclass
class SceneSpec:
    index: int
    location: int
    characters: tuple[int, int]
    tone: str
    tension: float
    first_shot: int
    n_shots: int


@dataclass
class TransitionSpec:
    """A gradual scene change: frames start_frame..start_frame + n_frames - 1 blend across the cut.

    The cut stays at shots[shot].start_frame (n_frames // 2 frames into the window), so shot
    timings, and the labels computed from them, are the same as with a hard cut.
    """

    shot: int  # index of the first shot of the incoming scene
    kind: str  # "dissolve" (cross-fade) | "fade" (to black and back)
    start_frame: int
    n_frames: int


@dataclass
class TitleStory:
    title: str  # file stem
    seed: int
    genre: str
    meta_genres: list[str]
    arc: str
    cast: list[int]
    scenes: list[SceneSpec]
    shots: list[ShotSpec]
    fps: int
    synopsis: str = ""
    tags: list[str] = field(default_factory=list)
    transitions: list[TransitionSpec] = field(default_factory=list)  # empty: every cut is hard

    @property
    def n_frames(self) -> int:
        last = self.shots[-1]
        return last.start_frame + last.n_frames

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ vocabulary (dialogue/synopsis)
NAMES = ("Ada", "Bram", "Cleo", "Dev", "Esme", "Finn", "Gia", "Hugo", "Iris", "Jude", "Kai", "Lena",
         "Milo", "Nia", "Omar", "Pia", "Quin", "Rosa", "Sami", "Tess")
TONE_WORDS = {
    "calm": ("quiet", "gentle", "rest", "easy", "slow", "peace", "soft", "still", "breathe", "settle"),
    "tense": ("hurry", "danger", "run", "now", "watch", "behind", "hide", "fast", "trap", "warning"),
    "joyful": ("laugh", "wonderful", "party", "great", "yes", "fun", "dance", "sunny", "cheers", "love"),
    "sad": ("sorry", "lost", "gone", "alone", "miss", "tears", "never", "goodbye", "grief", "empty"),
}
GENRE_WORDS = {
    "action": ("engine", "mission", "target", "explosion", "chase"),
    "comedy": ("banana", "silly", "joke", "oops", "prank"),
    "drama": ("family", "letter", "truth", "choice", "promise"),
    "horror": ("blood", "shadow", "scream", "ghost", "cellar"),
    "romance": ("kiss", "heart", "darling", "flowers", "wedding"),
}
FILLER = ("the", "we", "it", "that", "this", "then", "here", "there", "what", "you", "me", "about",
          "maybe", "just", "over", "with", "door", "table", "road", "morning", "later", "thing")
LOCATION_NAMES = ("harbour", "desert", "city street", "warehouse", "park", "carnival", "cafe",
                  "old house", "garden", "forest", "cellar", "lighthouse")


def _arc(kind: str, x: np.ndarray) -> np.ndarray:
    if kind == "rise":
        return 0.15 + 0.75 * x
    if kind == "peak":
        return 0.2 + 0.7 * np.exp(-((x - 0.65) ** 2) / 0.04)
    if kind == "valley":
        return 0.8 - 0.6 * np.exp(-((x - 0.5) ** 2) / 0.05)
    return 0.2 + 0.6 * np.abs(np.sin(2 * np.pi * x))  # double


def _line(rng: np.random.Generator, tone: str, genre: str, cfg: StoryConfig) -> tuple[str, str]:
    # The words hint at a tone that is the scene's with probability cue_p (else a random tone); a
    # minority of words carry the hint at all, the rest are filler.
    words_tone = tone if rng.random() < cfg.cue_p else str(rng.choice(TONES))
    words = []
    for _ in range(int(rng.integers(4, 8))):
        r = rng.random()
        if r < 0.3:
            words.append(str(rng.choice(TONE_WORDS[words_tone])))
        elif r < 0.4:
            words.append(str(rng.choice(GENRE_WORDS[genre if rng.random() < cfg.genre_cue_p else str(rng.choice(GENRES))])))
        else:
            words.append(str(rng.choice(FILLER)))
    return " ".join(words).capitalize() + rng.choice([".", "!", "?"]), words_tone


def make_story(index: int, seed: int, cfg: StoryConfig | None = None) -> TitleStory:
    """The latent story of title `index` of a catalog generated with `seed` (deterministic)."""
    cfg = cfg if cfg is not None else StoryConfig()
    rng = np.random.default_rng([seed, index])
    genre = GENRES[int(rng.integers(len(GENRES)))]
    other = [g for g in GENRES if g != genre]
    meta_genres = sorted([genre, str(rng.choice(other))])  # catalog lists two genres, one is the label
    arc = ARCS[int(rng.integers(len(ARCS)))]
    cast = [int(c) for c in rng.choice(N_CHARACTERS, size=int(rng.integers(2, 5)), replace=False)]
    # With a shot budget the scene lengths are drawn up front; without, inside the loop as always
    # (so the default configuration's random stream, and its stories, stay as they were).
    budget = _scene_lengths(rng, cfg) if cfg.max_shots else None
    n_scenes = len(budget) if budget else int(rng.integers(cfg.min_scenes, cfg.max_scenes + 1))
    pos = (np.arange(n_scenes) + 0.5) / n_scenes
    tension = np.clip(_arc(arc, pos) + rng.normal(0, cfg.tension_noise, n_scenes), 0.0, 1.0)
    scenes: list[SceneSpec] = []
    shots: list[ShotSpec] = []
    frame = 0
    # Scene marks come from their own generator: the default presets draw nothing from it, so their
    # stories are the same as before the marks could be turned down.
    marks = np.random.default_rng([seed, index, 30_000])
    for s in range(n_scenes):
        if rng.random() < GENRE_LOCATION_P:
            location = int(rng.choice(GENRE_LOCATIONS[genre]))
        else:
            location = int(rng.integers(N_LOCATIONS))
        if scenes and location == scenes[-1].location:  # consecutive scenes change location
            location = (location + 1 + int(rng.integers(N_LOCATIONS - 1))) % N_LOCATIONS
        if scenes and cfg.location_stay_p and marks.random() < cfg.location_stay_p:
            location = scenes[-1].location
        establishing = cfg.establishing_p >= 1.0 or marks.random() < cfg.establishing_p
        pair = rng.choice(cast, size=2, replace=False)
        prior = np.asarray(GENRE_TONE_PRIOR[genre]) * np.array([1 - 0.5 * tension[s], 0.4 + 1.6 * tension[s], 1.0, 1.0])
        tone = TONES[int(rng.choice(len(TONES), p=prior / prior.sum()))]
        n_shots = budget[s] if budget else int(rng.integers(cfg.min_shots_per_scene, cfg.max_shots_per_scene + 1))
        scenes.append(SceneSpec(s, location, (int(pair[0]), int(pair[1])), tone, float(tension[s]), len(shots), n_shots))
        for k in range(n_shots):
            n_frames = int(rng.integers(cfg.min_shot_frames, cfg.max_shot_frames + 1))
            tone_cue = tone if rng.random() < cfg.cue_p else TONES[int(rng.integers(len(TONES)))]
            genre_cue = genre if rng.random() < cfg.genre_cue_p else GENRES[int(rng.integers(len(GENRES)))]
            if k == 0 and establishing:
                shots.append(ShotSpec(len(shots), s, "establishing", -1, 0, frame, n_frames, tone_cue, genre_cue, "", ""))
            else:
                j = k - establishing  # character shots alternate between the pair, from the first one
                who = int(pair[j % 2])
                line, words_tone = ("", "")
                if rng.random() < cfg.line_p:
                    line, words_tone = _line(rng, tone, genre, cfg)
                    line = f"{NAMES[who]}: {line}"
                shots.append(ShotSpec(len(shots), s, "character", who, j % 2, frame, n_frames,
                                      tone_cue, genre_cue, line, words_tone))
            frame += n_frames
    names = [NAMES[c] for c in cast]
    hint = str(rng.choice(GENRE_WORDS[genre]))
    synopsis = (f"{names[0]} and {names[1]} cross paths at the {LOCATION_NAMES[scenes[0].location]}; "
                f"a story of {hint} and {str(rng.choice(GENRE_WORDS[str(rng.choice(other))]))}.")
    tags = sorted({LOCATION_NAMES[sc.location] for sc in scenes})[:4]
    return TitleStory(f"synth_{seed}_{index:04d}", seed, genre, meta_genres, arc, cast, scenes, shots,
                      cfg.fps, synopsis, tags, _transitions(seed, index, scenes, shots, cfg))


def _scene_lengths(rng: np.random.Generator, cfg: StoryConfig) -> list[int]:
    """Shots per scene for a title with a shot budget: scenes are added until the target is reached."""
    target = int(rng.integers(cfg.min_shots, cfg.max_shots - cfg.max_shots_per_scene + 2))
    lengths: list[int] = []
    while len(lengths) < cfg.max_scenes and (sum(lengths) < target or len(lengths) < cfg.min_scenes):
        lengths.append(int(rng.integers(cfg.min_shots_per_scene, cfg.max_shots_per_scene + 1)))
    return lengths


def _transitions(seed: int, index: int, scenes: list[SceneSpec], shots: list[ShotSpec],
                 cfg: StoryConfig) -> list[TransitionSpec]:
    """Dissolves and fades at scene boundaries, each with probability transition_p.

    Drawn from their own generator, so turning transitions on changes nothing else in the story.
    """
    if not cfg.transition_p:
        return []
    rng = np.random.default_rng([seed, index, 20_000])
    out = []
    for sc in scenes[1:]:
        kind = TRANSITION_KINDS[int(rng.integers(len(TRANSITION_KINDS)))]
        n = int(rng.integers(cfg.min_transition_frames, cfg.max_transition_frames + 1))
        if rng.random() < cfg.transition_p:
            cut = shots[sc.first_shot].start_frame
            out.append(TransitionSpec(sc.first_shot, kind, cut - n // 2, n))
    return out


# ------------------------------------------------------------------ labels from the latent story
# benchmark task -> (labels file, task kind, metric); one source: mediafm.evaluation.grid.TASKS
TASK_FILES = {t.name: (t.file, t.kind, t.metric) for t in TASKS}
# Clip edges sit this far inside their first/last shot, so a detector that places a cut a frame or
# two off still assigns the clip the intended shots.
EDGE_S = 0.15


@dataclass(frozen=True)
class ClipSpec:
    title: str
    first_shot: int
    last_shot: int  # inclusive
    start: float
    end: float


def _clip(story: TitleStory, first: int, last: int) -> ClipSpec:
    fps = story.fps
    return ClipSpec(story.title, first, last, story.shots[first].start_s(fps) + EDGE_S, story.shots[last].end_s(fps) - EDGE_S)


def _clip_tones(story: TitleStory, clip: ClipSpec) -> list[str]:
    return sorted({story.scenes[story.shots[i].scene].tone for i in range(clip.first_shot, clip.last_shot + 1)})


def _clip_tension(story: TitleStory, clip: ClipSpec) -> float:
    return float(np.mean([story.scenes[story.shots[i].scene].tension for i in range(clip.first_shot, clip.last_shot + 1)]))


def labels_for(story: TitleStory, cfg: StoryConfig | None = None) -> dict[str, list[tuple[str, float, float, str]]]:
    """Label rows (title, start, end, label) per benchmark task, all functions of the latent story.

    Candidate clips span 2-4 shots; half of them end at a scene boundary, half inside a scene.
    - genre: the title's genre.
    - tone: the tones of the scenes the clip overlaps (multilabel).
    - ad_relevancy: 1 if the clip ends at a scene boundary and the ending scene's tension is below
      the title's median scene tension (a calm break between scenes), else 0.
    - popularity: clip tension minus the title's mean tension, plus 0.5 if the clip is in the
      title's climax scene (highest tension) and 0.3 if its scenes have the genre's signature tone.
    - retrieval: per title one clip inside the climax scene (positive) and three clips from other
      scenes (negatives): 1:3 positives to negatives.
    """
    cfg = cfg if cfg is not None else StoryConfig()
    rng = np.random.default_rng([story.seed, 10_000 + int(story.title.rsplit("_", 1)[-1])])
    scenes = story.scenes
    boundaries = [sc.first_shot + sc.n_shots - 1 for sc in scenes[:-1]]  # last shot before each cut
    inner = [sc.first_shot + k for sc in scenes for k in range(1, sc.n_shots - 1)]  # mid-scene ends
    half = cfg.clips_per_title // 2
    ends = list(rng.choice(boundaries, size=min(half, len(boundaries)), replace=False))
    ends += list(rng.choice(inner, size=min(cfg.clips_per_title - len(ends), len(inner)), replace=False))
    clips = []
    for end in sorted(int(e) for e in ends):
        first = max(0, end - int(rng.integers(1, 4)))
        clips.append(_clip(story, first, end))
    median_t = float(np.median([sc.tension for sc in scenes]))
    climax = int(np.argmax([sc.tension for sc in scenes]))
    rows: dict[str, list] = {name: [] for name in TASK_FILES}
    for c in clips:
        end_scene = story.shots[c.last_shot].scene
        at_boundary = c.last_shot == scenes[end_scene].first_shot + scenes[end_scene].n_shots - 1 and end_scene < len(scenes) - 1
        ad = int(at_boundary and scenes[end_scene].tension < median_t)
        pop = clip_popularity(story, c.first_shot, c.last_shot)
        base = (c.title, c.start, c.end)
        rows["genre"].append((*base, story.genre))
        rows["tone"].append((*base, "|".join(_clip_tones(story, c))))
        rows["ad_relevancy"].append((*base, str(ad)))
        rows["popularity"].append((*base, f"{pop:.4f}"))
    # Retrieval: the positive is inside the climax scene, negatives come from the other scenes.
    sc = scenes[climax]
    first = sc.first_shot + int(rng.integers(0, max(1, sc.n_shots - 1)))
    rows["retrieval"].append((*_as_row(_clip(story, first, min(first + 1, sc.first_shot + sc.n_shots - 1))), "1"))
    others = [s for s in scenes if s.index != climax]
    # A one-scene story has no other scene to draw negatives from: its retrieval row stands alone.
    for s in (rng.choice(len(others), size=3, replace=len(others) < 3) if others else []):
        o = others[int(s)]
        f = o.first_shot + int(rng.integers(0, max(1, o.n_shots - 1)))
        rows["retrieval"].append((*_as_row(_clip(story, f, min(f + 1, o.first_shot + o.n_shots - 1))), "0"))
    return rows


def clip_popularity(story: TitleStory, first: int, last: int) -> float:
    """The popularity label of the clip of shots first..last (inclusive); see `labels_for`."""
    c = _clip(story, first, last)
    scenes = story.scenes
    climax = int(np.argmax([sc.tension for sc in scenes]))
    clip_scenes = {story.shots[i].scene for i in range(first, last + 1)}
    return float(_clip_tension(story, c) - np.mean([sc.tension for sc in scenes]) + 0.5 * (climax in clip_scenes)
                 + 0.3 * (SIGNATURE_TONE[story.genre] in _clip_tones(story, c)))


def _as_row(c: ClipSpec) -> tuple[str, float, float]:
    return (c.title, c.start, c.end)
