"""Settings from the environment, and adapters chosen by URL scheme."""

from __future__ import annotations

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
