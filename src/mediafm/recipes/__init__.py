"""Recipes: whole pipelines as documented functions that call the stages directly.

    from mediafm.recipes.demo import DemoConfig, run_demo

A recipe is what a command or a benchmark runs end to end; they call it rather than each other.
"""
