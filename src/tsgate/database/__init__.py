"""database seam."""
