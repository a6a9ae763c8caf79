"""Support for mediafm's tests and benchmarks: small stores written with the real writers, synthetic
shot-vector catalogs, and the real-media helpers around tests/media.

Kept apart from the `mediafm` library (as open_clip keeps `open_clip_train`): nothing in `mediafm`
imports it, and its functions are not part of the library's API.
"""
