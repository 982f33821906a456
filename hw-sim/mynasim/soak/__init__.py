"""``mynasim soak``: many visits through the real daemon with faults at random moments, then an audit.

plan (pure schedule from a seed) -> runner (drives the rig, does the faults) -> audit (pure
checks over what was recorded) -> summary (the table). See docs/soak.md.
"""
