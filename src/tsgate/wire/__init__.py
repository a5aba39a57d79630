"""Wire formats: the ACE API contract (times, values, cursors, pages and query
parameters), ``X-Fields`` masks, shared by the simulator, the client and the API, and
the layouts of chart answers."""
