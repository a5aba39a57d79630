"""Wire formats: the ACE API contract (times, values, cursors, pages and query
parameters) and ``X-Fields`` masks, shared by the simulator, the client and the API."""
