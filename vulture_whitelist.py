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
_.writeable  # src/tsgate/core/codec.py

# a Protocol's parameter name (tsdownsample's downsample(x, y, n_out))
y  # src/tsgate/core/downsample.py

# attributes of third-party objects the tests set: uvicorn.Server, selenium's ChromeOptions
_.should_exit  # tests/asgi.py
_.binary_location  # tests/browser.py

# the app factory uvicorn imports by name in each `tsgate serve --workers N` process
worker_app  # src/tsgate/cli/serve.py

# autouse pytest fixtures, and a pytest hook
restore_root  # tests/unit/test_logs.py
_unfreeze  # tests/unit/test_heap.py
_any_size  # tests/unit/test_wire_body.py
pytest_terminal_summary  # tests/differential/conftest.py

# report fields read only through dataclasses.asdict (tsgate cleanup prints the report)
failed_sites  # src/tsgate/series/recheck.py
skipped  # src/tsgate/ops/warm.py: ChartWarmCounters, in /api/stats and /metrics
fetched_units  # src/tsgate/ops/warm.py: ChartWarmCounters, in /api/stats and /metrics

# pytest fixtures used by name (pytest.mark.usefixtures)
wrk_installed  # tests/unit/test_bench_native.py

# hypothesis.stateful runs a state machine's rules, its teardown and its TestCase by name
teardown  # tests/differential/test_stateful.py
read_dropin_pages  # tests/differential/test_stateful.py
read_local_days  # tests/differential/test_stateful.py
read_frame  # tests/differential/test_stateful.py
read_again_with_the_etag  # tests/differential/test_stateful.py
read_prometheus  # tests/differential/test_stateful.py
read_while_upstream_fails  # tests/differential/test_stateful.py
read_with_the_revoked_token  # tests/differential/test_stateful.py
advance_clock  # tests/differential/test_stateful.py
upload_backlog  # tests/differential/test_stateful.py
damage_an_object  # tests/differential/test_stateful.py
plan_by  # tests/differential/test_stateful.py
damage_a_rollup  # tests/differential/test_stateful.py
revoke_a_token  # tests/differential/test_stateful.py
test_tsgate_answers_equal_upstream_through_every_change  # tests/differential/test_stateful.py
