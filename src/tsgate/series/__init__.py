"""Series: the pure core (model, extents, codec, rollups, downsample) and the read policy."""
