"""`percpu calibrate`: the engine's costs measured on the machine it runs on.

Small C microbenchmarks (workloads/guest/calib/, the guest programs' style) are built
on the spot, run until their medians are stable, converted to cycles at the measured
core clock, and fitted to the cost table by running the same microbenchmarks as engine
op programs; the result is a TOML cost profile that `--config` reads.
See docs/calibration.md. Modules: sources, build, measure, clock, machine, programs,
fit, profile, calibrate (the whole run), cli.
"""
