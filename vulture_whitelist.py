# Names vulture reports that are used in ways it cannot see (`make lint` runs vulture;
# see [tool.vulture] in pyproject.toml). Only false positives belong here.
# ruff: noqa
# fmt: off

# mypy-only conformance checks: "every adapter satisfies the seam's Protocol"
_conforms  # src/tsgate/cache/__init__.py, jobqueue/__init__.py, object_store/__init__.py

# SQLAlchemy event listeners (registered by @event.listens_for) and a DB-API attribute
_connect  # src/tsgate/database/engine.py
_begin  # src/tsgate/database/engine.py
_.isolation_level  # src/tsgate/database/engine.py: sqlite3.Connection.isolation_level

# numpy's flags, set to make decoded arrays read-only
_.writeable  # src/tsgate/series/codec.py

# a Protocol's parameter name (tsdownsample's downsample(x, y, n_out))
y  # src/tsgate/series/downsample.py

# attributes of third-party objects the tests set: uvicorn.Server, selenium's ChromeOptions
_.should_exit  # tests/asgi.py
_.binary_location  # tests/browser.py

# an autouse pytest fixture
restore_root  # tests/unit/test_logs.py

# NOT false positives: dead code in modules that other open work is reshaping now
# (issues #10, #12, #13). Delete each with its module's next change, then its line here.
_body  # src/tsgate/api/charts.py
completed  # src/tsgate/jobs/worker.py: Worker.completed, counted and never read
total_points  # src/tsgate/series/chart.py
monotonic_ms  # src/tsgate/series/chunkstore.py
_._point  # src/tsgate/upstream/simulator.py
series_to_rows  # src/tsgate/upstream/wire.py
decode_json  # src/tsgate/upstream/wire.py
