"""Settings from the environment, and adapters chosen by URL scheme."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tsgate._backends import Adapter, load_adapter
from tsgate.errors import ConfigError, MissingDependency
from tsgate.settings import Settings
from tsgate.upstream import open_upstream


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
    ("variable", "value", "expected"),
    [
        ("TSGATE_PORT", "70000", "expected int <= 65535"),
        ("TSGATE_PORT", "-1", "expected int >= 0"),
        ("TSGATE_MAX_BODY_BYTES", "1.5", "expected an integer"),
        ("TSGATE_MAX_POINTS_PER_REQUEST", "0", "expected int >= 1"),
        ("TSGATE_SETTLE_S", "soon", "expected a number"),
        ("TSGATE_SETTLE_S", "inf", "expected float <="),
        ("TSGATE_SETTLE_S", "nan", "expected float >="),
        ("TSGATE_UPSTREAM_TIMEOUT_S", "0", "expected float > 0"),
        ("TSGATE_COMPRESS_MIN_BYTES", "-5", "expected int >= 0"),
        ("TSGATE_JOB_MAX_ATTEMPTS", "0", "expected int >= 1"),
        ("TSGATE_JOB_RETRY_FACTOR", "0.5", "expected float >= 1"),
        ("TSGATE_LOG_FORMAT", "xml", "expected one of json, text"),
        ("TSGATE_LOG_LEVEL", "loud", "expected one of debug, info, warning, error, critical"),
        ("TSGATE_INLINE_WORKER", "maybe", "expected true or false"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_the_bound(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({variable: value})
    assert err.value.detail.startswith(f"{variable}={value!r}: {expected}")


def test_the_command_line_reports_a_bad_setting_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tsgate.cli import main

    monkeypatch.setenv("TSGATE_PORT", "eighty")
    assert main(["version"]) == 2
    assert capsys.readouterr().err.strip() == "tsgate: TSGATE_PORT='eighty': expected an integer"
