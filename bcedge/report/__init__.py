"""Reports of counts (no torch): one schema as JSON, CSV and a table (``counts``), file names as they
are shown (``names``), overlay PNGs (``overlay``)."""
