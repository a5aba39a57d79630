"""object_store seam."""
