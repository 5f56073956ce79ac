"""``TaskVersions``: versions kept beside objects, by identity, forgotten with them."""

import gc

from pydantic import BaseModel

from teal_taskstore.framework.task_versions import TaskVersions


class Task(BaseModel):
    task_id: str


def test_a_version_belongs_to_one_object_not_to_equal_ones() -> None:
    versions = TaskVersions()
    task, twin = Task(task_id="t"), Task(task_id="t")
    versions.remember(task, 3)
    assert versions.get(task) == 3
    assert versions.get(twin) is None
    versions.remember(task, 4)
    assert versions.get(task) == 4
    versions.remember(task, None)
    assert versions.get(task) is None


def test_an_object_that_dies_is_forgotten() -> None:
    versions = TaskVersions()
    for number in range(100):
        versions.remember(Task(task_id=str(number)), number)
    gc.collect()
    assert len(versions) == 0
    kept = Task(task_id="kept")
    versions.remember(kept, 1)
    gc.collect()
    assert len(versions) == 1
