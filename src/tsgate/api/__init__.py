"""HTTP API: the ACE drop-in paths, the chart API, jobs and operations."""
