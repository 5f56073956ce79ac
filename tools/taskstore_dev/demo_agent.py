"""The agent ``make demo`` runs in the agent sandbox: it stores a task and prints it.

An agent that uses teal_taskstore's own ``PersistenceFactory`` (an agent running the Teal
Agents framework loads the same environment through the framework's factory; the chain
test runs one): the factory builds ``TA_PERSISTENCE_CLASS`` from the injected
``TA_PERSISTENCE_MODULE``, the entry file the init container wrote. The task stays in the
store, so the demo can show it there.
"""

import asyncio
import json
import os
from datetime import UTC, datetime

from teal_taskstore import AgentTask, AgentTaskItem, MultiModalItem, PersistenceFactory

TASK_ID = "demo-sandbox-task"


def _item(role: str, text: str) -> AgentTaskItem:
    return AgentTaskItem.model_validate(
        {
            "task_id": TASK_ID,
            "role": role,
            "item": MultiModalItem(content=text),
            "request_id": "demo-request-1",
            "updated": datetime.now(UTC),
        }
    )


async def run() -> None:
    """Store a task paused for a human's approval, load it back and print it."""
    module = os.environ.get("TA_PERSISTENCE_MODULE")
    store = PersistenceFactory().get_persistence_manager()
    print(f"agent: TA_PERSISTENCE_MODULE={module}")
    print(f"agent: the factory built {type(store).__name__}")
    now = datetime.now(UTC)
    task = AgentTask(
        task_id=TASK_ID,
        session_id="demo-session",
        user_id="demo-user",
        items=[
            _item("user", "Book me a flight to Lisbon on Friday"),
            _item("assistant", "TP1353 at 09:05: shall I book it?"),
        ],
        created_at=now,
        last_updated=now,
        status="Paused",
    )
    async with store:
        if await store.load(TASK_ID) is not None:
            await store.delete(TASK_ID)  # a second demo run in the same store
        await store.create(task)
        stored = await store.load(TASK_ID)
    if stored is None:
        raise SystemExit(f"agent: {TASK_ID} was stored a moment ago but is not found")
    print("agent: stored and loaded back:")
    print(json.dumps(stored.model_dump(mode="json"), indent=2), flush=True)


if __name__ == "__main__":
    asyncio.run(run())
