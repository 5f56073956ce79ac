"""The task models keep the framework's fields and serialise without store bookkeeping."""

import json

from support.library_backends import make_item, make_task
from teal_taskstore import AgentTask, ContentType, MultiModalItem, TaskPersistenceManager


def test_defaults_match_the_framework() -> None:
    task = make_task()
    assert task.status == "Running"
    assert MultiModalItem(content="x").content_type is ContentType.TEXT
    assert task.items[0].pending_tool_calls is None
    assert task.items[0].chat_history is None


def test_json_round_trip_keeps_every_field_and_no_version() -> None:
    task = make_task(request_ids=("a", "b"), status="Paused")
    task.items[0].pending_tool_calls = [{"id": "call-1", "name": "search", "args": {"q": 1}}]
    task.items[0].chat_history = {"messages": [{"role": "user", "content": "hi"}]}
    task.items[1].item = MultiModalItem(content_type=ContentType.IMAGE, content="data:...")
    TaskPersistenceManager.remember_version(task, 7)
    text = task.model_dump_json()
    assert "_store_version" not in json.loads(text)
    again = AgentTask.model_validate_json(text)
    assert again == task  # equal content, whatever version each copy saw
    assert again.model_dump() == task.model_dump()
    assert TaskPersistenceManager.seen_version(again) is None


def test_request_ids_are_distinct_in_order() -> None:
    task = make_task(request_ids=("b", "a"))
    task.items.append(make_item("task-1", "b"))
    assert task.request_ids() == ["b", "a"]
