"""The readable transformer, NumPy only: what a tutorial reader steps through.

Imports nothing of minibitnet outside itself but ``errors`` and ``config``, and nothing
compiled: the model takes a kernel object, so the reference runs with NumPy alone.
"""
