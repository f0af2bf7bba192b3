"""StreamFlow benchmarks: ``make bench`` (``python -m bench``) prints a table and writes JSON.

Benchmarks are not tests: nothing here asserts on time. ``tests/bench/`` runs every
benchmark once at a tiny size so the code keeps working.
"""
