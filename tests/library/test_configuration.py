"""Settings and backend selection: every bad setting names its variable, and nothing leaks."""

import logging
from pathlib import Path

import pytest
import redis.asyncio

from teal_taskstore import (
    AppConfig,
    ConfigurationError,
    PersistenceFactory,
    RedisTaskPersistenceManager,
)
from teal_taskstore.persistence.redis_persistence_manager import RedisSettings

REDIS_MODULE = "teal_taskstore.persistence.redis_persistence_manager"
PASSWORD = "hunter2-do-not-show"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TA_REDIS_PORT", "abc", "an integer 1..65535"),
        ("TA_REDIS_PORT", "0", "an integer 1..65535"),
        ("TA_REDIS_PORT", "70000", "an integer 1..65535"),
        ("TA_REDIS_DB", "-1", "an integer 0..2147483647"),
        ("TA_REDIS_DB", "2147483648", "an integer 0..2147483647"),
        ("TA_REDIS_TTL", "-5", "an integer 0..2147483647"),
        ("TA_REDIS_TTL", "1h", "an integer 0..2147483647"),
        ("TA_REDIS_TTL", "99999999999999999", "an integer 0..2147483647"),
        ("TA_REDIS_SSL_CA_CERTS", "/no/such/ca.pem", "an existing file"),
        ("TA_REDIS_SSL", "maybe", "true/false/1/0/yes/no"),
        ("TA_REDIS_SSL", "on", "true/false/1/0/yes/no"),
        ("TA_REDIS_CONNECT_TIMEOUT", "0", "seconds > 0"),
        ("TA_REDIS_COMMAND_TIMEOUT", "soon", "seconds > 0"),
        ("TA_REDIS_RETRIES", "-1", "an integer >= 0"),
        ("TA_REDIS_MAX_CONNECTIONS", "0", "an integer >= 1"),
        ("TA_REDIS_MODE", "replicated", "standalone/sentinel/cluster"),
        ("TA_REDIS_WAIT_REPLICAS", "-1", "an integer >= 0"),
        ("TA_REDIS_WAIT_REPLICAS", "all", "an integer >= 0"),
        ("TA_REDIS_SENTINELS", "sentinel-0", "host:port"),
        ("TA_REDIS_SENTINELS", "sentinel-0:0", "host:port (port 1..65535)"),
        ("TA_REDIS_SENTINELS", "sentinel-0:26379x", "host:port"),
        ("TA_REDIS_SENTINELS", ":26379", "host:port"),
        ("TA_REDIS_SENTINELS", " , ", "at least one host:port"),
    ],
)
def test_a_bad_setting_fails_at_construction_naming_the_variable(
    variable: str, value: str, expected: str
) -> None:
    config = AppConfig(
        {
            "TA_PERSISTENCE_MODULE": REDIS_MODULE,
            "TA_PERSISTENCE_CLASS": "RedisTaskPersistenceManager",
            "TA_REDIS_PWD": PASSWORD,
            variable: value,
        }
    )
    with pytest.raises(ConfigurationError) as raised:
        PersistenceFactory(config).get_persistence_manager()
    message = str(raised.value)
    assert variable in message
    assert expected in message
    assert repr(value) in message
    assert PASSWORD not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("true", True), ("TRUE", True), ("1", True), ("Yes", True)],
        *[("false", False), ("False", False), ("0", False), ("NO", False)],
    ],
)
def test_ssl_flag_is_parsed_as_written(value: str, expected: bool) -> None:
    assert RedisSettings.from_config(AppConfig({"TA_REDIS_SSL": value})).ssl is expected


def test_defaults_and_every_variable_are_read(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("a CA bundle")
    assert RedisSettings.from_config(AppConfig({})) == RedisSettings()
    settings = RedisSettings.from_config(
        AppConfig(
            {
                "TA_REDIS_HOST": "redis.example",
                "TA_REDIS_PORT": "6380",
                "TA_REDIS_DB": "2",
                "TA_REDIS_TTL": "0",
                "TA_REDIS_SSL": "yes",
                "TA_REDIS_SSL_CA_CERTS": str(ca_file),
                "TA_REDIS_USERNAME": "agent",
                "TA_REDIS_PWD": PASSWORD,
                "TA_REDIS_KEY_PREFIX": "team:",
                "TA_REDIS_CONNECT_TIMEOUT": "0.5",
                "TA_REDIS_COMMAND_TIMEOUT": "3",
                "TA_REDIS_RETRIES": "0",
                "TA_REDIS_MAX_CONNECTIONS": "8",
            }
        )
    )
    assert settings == RedisSettings(
        host="redis.example",
        port=6380,
        db=2,
        ttl_seconds=0,
        ssl=True,
        ssl_ca_certs=str(ca_file),
        username="agent",
        password=PASSWORD,
        key_prefix="team:",
        connect_timeout=0.5,
        command_timeout=3.0,
        retries=0,
        max_connections=8,
    )
    assert PASSWORD not in repr(settings)


def test_app_config_snapshots_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TA_REDIS_HOST", "from-env")
    monkeypatch.setenv("TA_REDIS_PWD", PASSWORD)
    config = AppConfig()
    monkeypatch.setenv("TA_REDIS_HOST", "changed")
    assert config.get("TA_REDIS_HOST") == "from-env"
    assert config.get("TA_MISSING", "default") == "default"
    assert PASSWORD not in repr(config)
    assert "TA_REDIS_PWD" in repr(config)


SENTINEL_PASSWORD = "sentinel-secret-do-not-show"


def sentinel_config(**extra: str) -> AppConfig:
    return AppConfig(
        {
            "TA_REDIS_MODE": "sentinel",
            "TA_REDIS_SENTINELS": "s0.example:26379, [::1]:26380,s2.example:26381",
            "TA_REDIS_PWD": PASSWORD,
            **extra,
        }
    )


def test_sentinel_settings_are_read_and_secrets_stay_out_of_reprs() -> None:
    settings = RedisSettings.from_config(
        sentinel_config(
            TA_REDIS_SENTINEL_MASTER="orders",
            TA_REDIS_SENTINEL_PWD=SENTINEL_PASSWORD,
            TA_REDIS_SENTINEL_USERNAME="watcher",
            TA_REDIS_WAIT_REPLICAS="1",
        )
    )
    assert settings.mode == "sentinel"
    assert settings.sentinels == (("s0.example", 26379), ("::1", 26380), ("s2.example", 26381))
    assert settings.sentinel_master == "orders"
    assert settings.sentinel_username == "watcher"
    assert settings.sentinel_password == SENTINEL_PASSWORD
    assert settings.wait_replicas == 1
    manager = RedisTaskPersistenceManager(settings=settings)
    for text in (repr(settings), repr(manager)):
        assert PASSWORD not in text
        assert SENTINEL_PASSWORD not in text
    assert "'orders'" in repr(manager)
    assert "s0.example:26379" in repr(manager)


def test_defaults_of_the_ha_settings() -> None:
    settings = RedisSettings.from_config(sentinel_config())
    assert settings.sentinel_master == "mymaster"
    assert settings.sentinel_password is None
    assert settings.wait_replicas == 0
    assert RedisSettings().mode == "standalone"
    assert RedisSettings.from_config(AppConfig({"TA_REDIS_MODE": "Cluster"})).mode == "cluster"


def test_the_sentinels_get_their_own_credentials_never_the_data_password() -> None:
    settings = RedisSettings.from_config(
        sentinel_config(TA_REDIS_SENTINEL_PWD=SENTINEL_PASSWORD, TA_REDIS_SENTINEL_USERNAME="w")
    )
    to_sentinel = settings.sentinel_connection(("s0.example", 26379))
    assert (to_sentinel.host, to_sentinel.port) == ("s0.example", 26379)
    assert to_sentinel.password == SENTINEL_PASSWORD
    assert to_sentinel.username == "w"
    without = RedisSettings.from_config(sentinel_config()).sentinel_connection(("s", 1))
    assert without.password is None
    to_master = settings.connection(("10.0.0.7", 6390))
    assert (to_master.host, to_master.port, to_master.password) == ("10.0.0.7", 6390, PASSWORD)


def test_sentinel_mode_without_sentinels_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="TA_REDIS_SENTINELS must list the sentinels"):
        RedisSettings.from_config(AppConfig({"TA_REDIS_MODE": "sentinel"}))


def test_a_bad_sentinel_entry_among_good_ones_is_named() -> None:
    with pytest.raises(ConfigurationError) as raised:
        RedisSettings.from_config(AppConfig({"TA_REDIS_SENTINELS": "a:1,b,c:3"}))
    assert "TA_REDIS_SENTINELS" in str(raised.value)
    assert "'b'" in str(raised.value)


def test_host_and_port_in_sentinel_mode_are_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        settings = RedisSettings.from_config(
            sentinel_config(TA_REDIS_HOST="redis.example", TA_REDIS_PORT="6390")
        )
    assert "TA_REDIS_HOST and TA_REDIS_PORT ignored with TA_REDIS_MODE=sentinel" in caplog.text
    assert PASSWORD not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        RedisSettings.from_config(sentinel_config())
    assert "ignored" not in caplog.text
    assert settings.sentinels[0] == ("s0.example", 26379)


def test_cluster_mode_refuses_a_database_other_than_0() -> None:
    with pytest.raises(ConfigurationError) as raised:
        RedisSettings.from_config(AppConfig({"TA_REDIS_MODE": "cluster", "TA_REDIS_DB": "1"}))
    assert "TA_REDIS_DB must be 0 with TA_REDIS_MODE=cluster" in str(raised.value)


def test_cluster_mode_refuses_a_client_passed_in() -> None:
    client = redis.asyncio.Redis()
    with pytest.raises(ConfigurationError, match="TA_REDIS_MODE=cluster"):
        RedisTaskPersistenceManager(
            settings=RedisSettings.from_config(AppConfig({"TA_REDIS_MODE": "cluster"})),
            client=client,
        )


def test_cluster_mode_is_built_and_named_in_the_repr() -> None:
    manager = RedisTaskPersistenceManager(
        AppConfig({"TA_REDIS_MODE": "cluster", "TA_REDIS_HOST": "seed", "TA_REDIS_PWD": "s3cret"})
    )
    assert "cluster seed seed:6379" in repr(manager)
    assert "s3cret" not in repr(manager)
