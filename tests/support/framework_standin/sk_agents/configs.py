"""The settings the stand-in framework registers: its defaults and the Redis names it reads."""

from ska_utils import AppConfig, Config

TA_PERSISTENCE_MODULE = Config(
    env_name="TA_PERSISTENCE_MODULE",
    is_required=True,
    default_value="persistence/in_memory_persistence_manager.py",
)
TA_PERSISTENCE_CLASS = Config(
    env_name="TA_PERSISTENCE_CLASS", is_required=True, default_value="InMemoryPersistenceManager"
)
# Registered by the framework; TA_REDIS_USERNAME and TA_REDIS_KEY_PREFIX are not (fact 7).
TA_REDIS_HOST = Config(env_name="TA_REDIS_HOST", is_required=False, default_value=None)
TA_REDIS_PORT = Config(env_name="TA_REDIS_PORT", is_required=False, default_value=None)
TA_REDIS_DB = Config(env_name="TA_REDIS_DB", is_required=False, default_value=None)
TA_REDIS_TTL = Config(env_name="TA_REDIS_TTL", is_required=False, default_value=None)
TA_REDIS_SSL = Config(env_name="TA_REDIS_SSL", is_required=False, default_value="true")
TA_REDIS_PWD = Config(env_name="TA_REDIS_PWD", is_required=False, default_value=None)

configs = [
    TA_PERSISTENCE_MODULE,
    TA_PERSISTENCE_CLASS,
    TA_REDIS_HOST,
    TA_REDIS_PORT,
    TA_REDIS_DB,
    TA_REDIS_TTL,
    TA_REDIS_SSL,
    TA_REDIS_PWD,
]
AppConfig.add_configs(configs)
