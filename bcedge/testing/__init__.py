"""Test doubles that tests/ and benchmarks/ share: model-free backends and counters whose right
answer is known, and observers of a counter's tiles.

    squares   StubCounter: counts coloured squares (the watch tests, the watch benchmarks)
    stub_cli  the ``bcedge`` CLI with that counter in place of a model (subprocess tests, soak)
    oracle    Truth and OracleBackend: a perfect detector built from ground truth (seam benchmarks)
    recorder  TileRecorder: which tile each merged detection came from (``Counter.add_tile_hook``)

Shipped in the package so that both may import them; nothing else in bcedge imports this package.
"""
