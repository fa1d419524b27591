"""`tuangou simulate`: a city's week of group-buying driven through the real services, governance on and off.

A composition root like the CLI: it owns no tables, no routes and no jobs (so the registry finds nothing
here), calls only public service functions and `core.jobs`, and keeps its own arithmetic (the world and the
outcome model) pure in `world.py` and `rules.py`.
"""
