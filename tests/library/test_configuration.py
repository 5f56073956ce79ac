"""Settings and backend selection: every bad setting names its variable, and nothing leaks."""

from pathlib import Path

import pytest

from teal_taskstore import (
    AppConfig,
    ConfigurationError,
    PersistenceFactory,
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
