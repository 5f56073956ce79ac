"""Each row of docs/library.md's "What a Teal Agents pod does with each TaskStore" table."""

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sk_agents.persistence.in_memory_persistence_manager import (
    InMemoryPersistenceManager as FrameworkInMemory,
)

from support.framework_tasks import framework_store
from teal_taskstore import InMemoryPersistenceManager, PersistenceFactory
from teal_taskstore.framework import IN_MEMORY_CLASS, REDIS_CLASS
from teal_taskstore.framework.adapter import FrameworkAdapter

CUSTOM_STORES = """
from teal_taskstore import InMemoryPersistenceManager, TaskPersistenceManager
from teal_taskstore.framework.adapter import FrameworkAdapter


class OurBaseOnly(InMemoryPersistenceManager):
    '''Written for teal_taskstore's base class: the framework refuses it.'''


class ForTheFramework(FrameworkAdapter):
    '''The same backend, handed to the framework through the adapter.'''

    def __init__(self, app_config: object = None) -> None:
        super().__init__(OurBaseOnly())
"""


@pytest.fixture
def framework(fresh_framework: None) -> Iterator[None]:
    yield
    sys.modules.pop("custom_stores", None)


def inject(monkeypatch: pytest.MonkeyPatch, module: str, class_name: str) -> None:
    monkeypatch.setenv("TA_PERSISTENCE_MODULE", module)
    monkeypatch.setenv("TA_PERSISTENCE_CLASS", class_name)


@pytest.mark.parametrize("class_name", [IN_MEMORY_CLASS, REDIS_CLASS])
def test_memory_and_redis_stores_load_from_the_entry_file(
    framework: None, entry_file: Path, monkeypatch: pytest.MonkeyPatch, class_name: str
) -> None:
    inject(monkeypatch, str(entry_file), class_name)
    store = framework_store()
    assert isinstance(store, FrameworkAdapter)
    assert type(store).__name__ == class_name
    # An agent on our own factory, in the same environment, gets our native class.
    assert type(PersistenceFactory().get_persistence_manager()).__name__ == class_name


def test_nothing_injected_is_the_frameworks_own_store(framework: None) -> None:
    assert type(framework_store()) is FrameworkInMemory
    assert type(PersistenceFactory().get_persistence_manager()) is InMemoryPersistenceManager


def test_a_dotted_module_path_fails_at_start_up(
    framework: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject(monkeypatch, "teal_taskstore.persistence.redis_persistence_manager", REDIS_CLASS)
    with pytest.raises(ImportError):
        framework_store()


def test_a_file_path_to_our_own_module_is_not_the_frameworks_class(
    framework: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = Path(sys.modules["teal_taskstore"].__file__ or "").parent / "persistence"
    inject(monkeypatch, str(module / "redis_persistence_manager.py"), REDIS_CLASS)
    with pytest.raises(TypeError, match="not a subclass of TaskPersistenceManager"):
        framework_store()


def test_a_custom_class_on_our_base_needs_the_adapter(
    framework: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "custom_stores.py"
    path.write_text(textwrap.dedent(CUSTOM_STORES))
    inject(monkeypatch, str(path), "OurBaseOnly")
    with pytest.raises(TypeError, match="not a subclass of TaskPersistenceManager"):
        framework_store()

    from sk_agents.persistence.singleton import Singleton

    Singleton.instances.clear()
    inject(monkeypatch, str(path), "ForTheFramework")
    store = framework_store()
    assert type(store).__name__ == "ForTheFramework"
    assert type(store.backend).__name__ == "OurBaseOnly"
