"""cache seam."""
