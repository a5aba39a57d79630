"""The read policy over the pure core (``tsgate.core``): access, the chunk index and
store, planning, fetching, re-checks and chart queries."""
