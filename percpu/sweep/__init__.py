"""Sweeps: a TOML spec expands to points, run locally or as Slurm job arrays (README, Sweeps).

spec.py reads and validates the spec; point.py names a point by a hash of its config;
claim.py claims, commits and reads a point's files (exactly one result per point);
run.py runs one point; index.py derives every point's state; backends/ run points;
collect.py writes the index, the tidy table and the report; cli.py is `percpu sweep`.
"""
