"""Settings from the environment, and adapters chosen by URL scheme."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tsgate._backends import Adapter, load_adapter
from tsgate.errors import ConfigError, MissingDependency
from tsgate.jobs.model import RetryPolicy
from tsgate.ops.maintenance import MaintenanceOptions
from tsgate.series.live import LiveLimits
from tsgate.series.options import CacheSettings, LiveSettings
from tsgate.series.planning import CachePolicy
from tsgate.settings import ENV_PREFIX, Settings
from tsgate.upstream import open_upstream
from tsgate.upstream.ace import ClientPolicy
from tsgate.upstream.options import UpstreamSettings

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = Settings.__bases__  # each component's struct


def test_defaults_are_the_embedded_configuration() -> None:
    s = Settings.from_env({})
    assert s.upstream_url == "sim://?seed=1"
    assert s.objects_url.startswith("file://") and s.database_url.startswith("sqlite://")
    assert s.cache_url == "memory://" and s.upstream_token is None


def test_env_values_are_typed_and_overrides_win() -> None:
    env = {
        "TSGATE_PORT": "9000",
        "TSGATE_SETTLE_S": "60",
        "TSGATE_CORS_ORIGINS": "http://a, http://b",
        "TSGATE_UPSTREAM_TOKEN": "secret",
    }
    s = Settings.from_env(env, port=9100)
    assert s.port == 9100 and s.settle_s == 60.0
    assert s.cors_origins == ("http://a", "http://b")
    assert s.upstream_token == "secret" and "secret" not in repr(s)


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="TSGATE_PORT"):
        Settings.from_env({"TSGATE_PORT": "eighty"})


@pytest.mark.parametrize("value", ["-1", "soon", "1e12"])
def test_a_bad_cov_gap_floor_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="TSGATE_COV_GAP_FLOOR_S"):
        Settings.from_env({"TSGATE_COV_GAP_FLOOR_S": value})
    assert Settings.from_env({"TSGATE_COV_GAP_FLOOR_S": "7200"}).cov_gap_floor_s == 7200.0


TABLE = {
    "memory": Adapter("tsgate.settings:Settings"),
    "fancy": Adapter("no_such_driver_pkg.mod:Thing", extra="fancy"),
}


def test_unknown_scheme_names_the_supported_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_adapter("objects", "ftp://x", TABLE)
    assert "fancy://" in err.value.detail and "memory://" in err.value.detail


def test_missing_driver_names_the_extra() -> None:
    with pytest.raises(MissingDependency) as err:
        load_adapter("objects", "fancy://x", TABLE)
    assert "pip install 'tsgate[fancy]'" in err.value.detail
    assert load_adapter("objects", "memory://", TABLE) is Settings


def test_upstream_schemes() -> None:
    with pytest.raises(ConfigError, match="sim://"):
        open_upstream(Settings(upstream_url="ftp://x"))
    with pytest.raises(ConfigError, match="seed"):
        open_upstream(Settings(upstream_url="sim://?seed=abc"))


def test_every_option_is_converted_to_its_type() -> None:
    env = {
        "TSGATE_INLINE_WORKER": "no",
        "TSGATE_WEBHOOK_ALLOW_PRIVATE": "ON",
        "TSGATE_JOB_RETENTION_S": "3600",
        "TSGATE_COMPRESS_MIN_BYTES": " 0 ",
        "TSGATE_LOG_LEVEL": "DEBUG",
        "TSGATE_ADMIN_KEY": "",  # empty: unset
    }
    s = Settings.from_env(env)
    assert s.inline_worker is False and s.webhook_allow_private is True
    assert s.job_retention_s == 3600.0 and type(s.job_retention_s) is float
    assert s.compress_min_bytes == 0 and type(s.compress_min_bytes) is int
    assert s.log_level == "debug" and s.admin_key is None
    assert Settings.from_env({}) == Settings()


@dataclass(frozen=True)
class _WithOptionalInt(Settings):
    sample_limit: int | None = None


def test_an_optional_int_is_an_int_not_a_string() -> None:
    assert _WithOptionalInt.from_env({"TSGATE_SAMPLE_LIMIT": "42"}).sample_limit == 42
    assert _WithOptionalInt.from_env({"TSGATE_SAMPLE_LIMIT": ""}).sample_limit is None
    with pytest.raises(ConfigError, match="TSGATE_SAMPLE_LIMIT='many'"):
        _WithOptionalInt.from_env({"TSGATE_SAMPLE_LIMIT": "many"})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TSGATE_PORT", "70000", "TSGATE_PORT='70000': expected int <= 65535"),
        ("TSGATE_PORT", "-1", "TSGATE_PORT='-1': expected int >= 0"),
        ("TSGATE_MAX_BODY_BYTES", "1.5", "TSGATE_MAX_BODY_BYTES='1.5': expected an integer"),
        (
            "TSGATE_MAX_POINTS_PER_REQUEST",
            "0",
            "TSGATE_MAX_POINTS_PER_REQUEST='0': expected int >= 1",
        ),
        ("TSGATE_SETTLE_S", "soon", "TSGATE_SETTLE_S='soon': expected a number"),
        ("TSGATE_SETTLE_S", "inf", "TSGATE_SETTLE_S='inf': expected float <="),
        ("TSGATE_SETTLE_S", "nan", "TSGATE_SETTLE_S='nan': expected float >="),
        ("TSGATE_UPSTREAM_TIMEOUT_S", "0", "TSGATE_UPSTREAM_TIMEOUT_S='0': expected float > 0"),
        ("TSGATE_COMPRESS_MIN_BYTES", "-5", "TSGATE_COMPRESS_MIN_BYTES='-5': expected int >= 0"),
        ("TSGATE_JOB_MAX_ATTEMPTS", "0", "TSGATE_JOB_MAX_ATTEMPTS='0': expected int >= 1"),
        ("TSGATE_JOB_RETRY_FACTOR", "0.5", "TSGATE_JOB_RETRY_FACTOR='0.5': expected float >= 1"),
        ("TSGATE_LOG_FORMAT", "xml", "TSGATE_LOG_FORMAT='xml': expected one of json, text"),
        (
            "TSGATE_LOG_LEVEL",
            "loud",
            "TSGATE_LOG_LEVEL='loud': expected one of debug, info, warning, error, critical",
        ),
        ("TSGATE_INLINE_WORKER", "maybe", "TSGATE_INLINE_WORKER='maybe': expected true or false"),
        ("TSGATE_WORKERS", "0", "TSGATE_WORKERS='0': expected int >= 1"),
        (
            "TSGATE_UPSTREAM_CONCURRENCY",
            "5000",
            "TSGATE_UPSTREAM_CONCURRENCY='5000': expected int <= 1024",
        ),
        ("TSGATE_STATS_RETENTION_DAYS", "0", "TSGATE_STATS_RETENTION_DAYS='0': expected float > 0"),
        ("TSGATE_WARM_CHARTS_DAYS", "400", "TSGATE_WARM_CHARTS_DAYS='400': expected float <= 366"),
        ("TSGATE_LIVE_MIN_POLL_S", "-1", "TSGATE_LIVE_MIN_POLL_S='-1': expected float > 0"),
        ("TSGATE_MAX_FILE_BYTES", "big", "TSGATE_MAX_FILE_BYTES='big': expected an integer"),
        (
            "TSGATE_RECHECK_AFTER",
            "2h,soon",
            "TSGATE_RECHECK_AFTER='2h,soon': 'soon' is not a duration like 90s, 2h or 7d",
        ),
        (
            "TSGATE_RECHECK_AFTER",
            "1d,2h",
            "TSGATE_RECHECK_AFTER='1d,2h': durations must be ascending",
        ),
        (
            "TSGATE_ALERT_RULES",
            "database_bytes>5",
            "TSGATE_ALERT_RULES: 'database_bytes>5' is not metric=warning/critical",
        ),
        (
            "TSGATE_ALERT_RULES",
            "no_such_metric=1/2",
            "TSGATE_ALERT_RULES: unknown metric 'no_such_metric'; one of chunk_bytes, ",
        ),
        ("TSGATE_SITE_ZONES", "campus", "TSGATE_SITE_ZONES: 'campus' is not site=Zone"),
        (
            "TSGATE_SITE_ZONES",
            "campus=Mars/Olympus",
            "TSGATE_SITE_ZONES: 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Berlin, UTC)",
        ),
        (
            "TSGATE_POINT_KINDS",
            "a/b=fuzzy",
            "TSGATE_POINT_KINDS: 'a/b=fuzzy' is not point=kind[:mode]",
        ),
        (
            "TSGATE_POINT_KINDS",
            "a/b=binary:often",
            "TSGATE_POINT_KINDS: 'a/b=binary:often': mode 'often'",
        ),
    ],
)
def test_a_bad_value_stops_the_start_with_one_message_naming_it(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({variable: value})
    assert err.value.detail.startswith(message)


def test_the_command_line_reports_a_bad_setting_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tsgate.cli import main

    monkeypatch.setenv("TSGATE_PORT", "eighty")
    assert main(["version"]) == 2
    assert capsys.readouterr().err.strip() == "tsgate: TSGATE_PORT='eighty': expected an integer"


def test_every_option_has_one_owner_and_one_row_in_the_readme() -> None:
    assert len(COMPONENTS) >= 8 and Settings not in COMPONENTS
    owned = [f.name for component in COMPONENTS for f in dataclasses.fields(component)]
    assert len(owned) == len(set(owned)), "two components declare the same option"
    assert set(owned) == {f.name for f in dataclasses.fields(Settings)}
    # Settings inherits every struct: a method of one must not shadow another's name
    methods = [n for c in COMPONENTS for n in vars(c) if not n.startswith("_") and n not in owned]
    assert len(methods) == len(set(methods)) and not set(methods) & set(owned)
    variables = {ENV_PREFIX + name.upper() for name in owned}
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| (.+?) \|", readme, re.MULTILINE))
    in_rows = {v for row in rows for v in re.findall(r"TSGATE_[A-Z0-9_]+", row)}
    assert variables - in_rows == set(), "options without a row in the README's table"
    named = set()
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        named |= set(re.findall(r"TSGATE_[A-Z0-9_]*[A-Z0-9]\b", page.read_text()))
    assert named - variables == set(), "the docs name variables no option reads"


def test_each_component_is_given_the_values_of_its_variables() -> None:
    s = Settings.from_env(
        {
            "TSGATE_UPSTREAM_TIMEOUT_S": "7.5",
            "TSGATE_UPSTREAM_PAGE_SIZE": "1000",
            "TSGATE_BREAKER_FAILURES": "0",
            "TSGATE_SETTLE_S": "60",
            "TSGATE_RECHECK_AFTER": "90s, 2h,1d",
            "TSGATE_LIVE_MIN_POLL_S": "2.5",
            "TSGATE_LIVE_BUFFER_EVENTS": "3",
            "TSGATE_CHART_TTL_S": "0",
            "TSGATE_ALERT_DB_BYTES": "5000000000",
            "TSGATE_JOB_RETRY_FACTOR": "3",
            "TSGATE_JOB_MAX_ATTEMPTS": "9",
        }
    )
    client = ClientPolicy.of(s)
    assert (client.timeout_s, client.page_size, client.breaker_failures) == (7.5, 1000, 0)
    policy = CachePolicy.of(s, s)
    assert policy.settle_ms == 60_000 and policy.site_page_size == 1000
    assert policy.recheck_schedule_ms == (90_000, 7_200_000, 86_400_000)
    live = LiveLimits.of(s)
    assert (live.min_poll_ms, live.buffer, live.per_caller) == (2500, 3, 8)
    upkeep = MaintenanceOptions.of(s)
    assert (upkeep.chart_ttl_s, upkeep.alert_db_bytes) == (0.0, 5_000_000_000)
    assert type(upkeep.alert_db_bytes) is int
    retry = RetryPolicy.of(s)
    assert (retry.factor, retry.max_attempts, retry.base_s) == (3.0, 9, 2.0)


def test_a_component_struct_checks_its_bounds_alone() -> None:
    with pytest.raises(ConfigError, match="TSGATE_RECHECK_AFTER='never'"):
        CacheSettings(recheck_after="never")
    assert ClientPolicy.of(UpstreamSettings()) == ClientPolicy()
    assert LiveLimits.of(LiveSettings()) == LiveLimits()
