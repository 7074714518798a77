"""percpu: what would per-(cpu, ASID) page-table roots cost on x86-64, and what would they buy?

The C++ model lives in core/ and is reached through the `percpu._core` extension;
this package holds the command line, workload rendering, analysis and sweeps.
"""

__version__ = "0.1.0"
