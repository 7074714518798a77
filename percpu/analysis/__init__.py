"""Analysis: parse gem5-format stats.txt, tidy it into a DataFrame, write reports.

stats_txt reads and writes gem5's text format, tidy turns run directories into
one long DataFrame and answers common questions, report writes md/html/png.
Nothing here imports the C++ extension, so reports run anywhere pandas does.
"""

from percpu.analysis.stats_txt import (
    Dump,
    Stat,
    StatsFormatError,
    parse_stats_txt,
    write_stats_txt,
)

__all__ = ["Dump", "Stat", "StatsFormatError", "parse_stats_txt", "write_stats_txt"]
