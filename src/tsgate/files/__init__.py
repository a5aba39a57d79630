"""User files (floor plans, commissioning reports, exported snapshots): what a file's
bytes are, what it may be called, and which bytes of it a ``Range`` asks for."""
