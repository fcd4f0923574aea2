"""Benchmarks (no torch at import): ``matrix`` (profiles, cells, statuses), ``runner`` (one process per cell),
``cell`` (what a cell measures), ``timing`` (warm-up, percentiles, outliers), ``memory``, ``contention``,
``artifacts`` (exports built once per architecture), ``report`` (markdown, Pareto PNG, side by side),
``jetson`` (tegrastats / jtop) and ``machine`` (what a result file says about where it ran)."""
