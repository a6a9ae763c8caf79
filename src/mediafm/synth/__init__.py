"""A synthetic narrative catalog: a latent story model (story.py) rendered to real media (render.py).

See docs/narrative-benchmark.md for the latent model and what it can and cannot tell us.
"""
