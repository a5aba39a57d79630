"""jobs seam."""
