"""Media I/O: decoding video frames and audio with exact times, subtitles, title metadata.

Submodules: `decode` (video frames, probe), `audio` (16 kHz mono), `subtitles` (sidecar and
embedded cues), `metadata` (NAME.json).
"""
