"""Image format readers behind ``bcedge.runtime.sources.open_image``, one module per way of reading."""
