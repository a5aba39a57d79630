"""jobqueue seam."""
