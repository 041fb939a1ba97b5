"""The ``engine-scripting demo``: esper game loops driven by Lua scripts, rendered with pygame-ce.

Scenes live in ``scenes.py``; their Lua scripts ship in ``demo/lua``, except the rogue scene's,
which come from the hostile catalogue (``bench/hostile``). ``runner.py`` runs the loop and prints
the per-script stats; ``render.py`` draws frames when pygame-ce is installed.
"""
