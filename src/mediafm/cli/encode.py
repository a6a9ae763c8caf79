"""`mediafm encode STORE`: (re)compute per-shot embeddings and fused vectors without re-decoding."""

from __future__ import annotations

import argparse

from mediafm.cli.numbers import count
from mediafm.devices import DEVICE_HELP
from mediafm.encoders.config import EncodeConfig
from mediafm.types import MODALITIES

_D = EncodeConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="catalog store folder (from `mediafm ingest`)")
    for m in MODALITIES:
        parser.add_argument(f"--{m}", default=getattr(_D, m), metavar="NAME",
                            help=f"{m} encoder (default: the registry default; see `mediafm encoders`)")
    parser.add_argument("--video-weights", default=_D.video_weights, metavar="DIR",
                        help="local weights directory for a loader such as `clip`")
    parser.add_argument("--audio-weights", default=_D.audio_weights, metavar="DIR",
                        help="local weights directory for a loader such as `wav2vec2`")
    parser.add_argument("--text-weights", default=_D.text_weights, metavar="DIR",
                        help="local copy of the text model's folder (minilm-l6: instead of its package)")
    parser.add_argument("--device", default=_D.device, help=f"where encoders with a GPU path run: {DEVICE_HELP}")
    parser.add_argument("--batch-shots", type=count(1), default=_D.batch_shots, help="shots per encoder batch")
    parser.add_argument("--asr", action="store_true", default=_D.asr,
                        help="transcribe shots' audio (Whisper tiny.en) for titles without subtitles")
    parser.add_argument("--descriptors", action=argparse.BooleanOptionalAction, default=_D.descriptors,
                        help="append the film descriptors (loudness, light, colour, motion, shot length; "
                             "docs/encoders.md) to the fused vector")
    parser.add_argument("--force", action="store_true", default=_D.force,
                        help="re-encode titles already encoded with the same encoders")
    parser.add_argument("--titles", nargs="*", default=None, metavar="TITLE_ID", help="only these titles")


def run(args: argparse.Namespace) -> int:
    from mediafm.encoders.encode_store import encode_store
    from mediafm.store.catalog import Store

    config = EncodeConfig(video=args.video, audio=args.audio, text=args.text, video_weights=args.video_weights,
                          audio_weights=args.audio_weights, text_weights=args.text_weights,
                          batch_shots=args.batch_shots, descriptors=args.descriptors, asr=args.asr, force=args.force,
                          device=args.device)
    report = encode_store(Store(args.store), config, title_ids=args.titles)
    names = {m: report.encoders[m]["name"] for m in MODALITIES}
    print(f"encoded {len(report.encoded)} titles ({report.shots} shots) in {report.seconds:.1f} s; "
          f"skipped {len(report.skipped)} already encoded; encoders {names}")
    return 0
