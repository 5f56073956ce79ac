"""An agent process run by the chain test under ``scripts/agent-sandbox``; prints JSON.

With the stand-in framework (``tests/support/framework_standin``) and ``tests`` on its
PYTHONPATH and semantic-kernel installed, it does what a Teal Agents pod does with the
environment the operator injected: the framework's factory loads ``TA_PERSISTENCE_MODULE``
(the entry file in the volume) and builds ``TA_PERSISTENCE_CLASS``; the handler stores a
task, pauses it for a tool call's approval (chat history with a tool call and a result)
and resumes it, running the tool once. The task is loaded back and left in the store.

Prints ``{"store", "module", "library", "python", "task_id", "status", "items",
"history_messages", "tool_runs"}``.
"""

import asyncio
import json
import os
import platform
import sys
from typing import Any


async def run() -> dict[str, Any]:
    import sk_agents.configs  # noqa: F401  (registers the framework's settings)
    from semantic_kernel.contents.function_call_content import FunctionCallContent
    from sk_agents.persistence.persistence_factory import PersistenceFactory
    from sk_agents.tealagents.v1alpha1.agent.handler import TealAgentsV1Alpha1Handler
    from ska_utils import AppConfig

    from support.framework_tasks import booking_call, history_with_a_tool_call_and_result

    store = PersistenceFactory(AppConfig()).get_persistence_manager()
    handler = TealAgentsV1Alpha1Handler(store)
    task, request_id = await handler.open_task("sandbox-user", "Book me a flight to Lisbon")
    await handler.pause_for_approval(
        request_id, history_with_a_tool_call_and_result(), [booking_call()]
    )
    tool_runs: list[str] = []

    def run_tool(call: FunctionCallContent) -> str:
        tool_runs.append(str(call.function_name))
        return "booked TP1353"

    await handler.resume_task(request_id, run_tool)
    loaded = await store.load(task.task_id)
    assert loaded is not None, f"task {task.task_id} was stored but is not found"
    history = loaded.items[-3].chat_history
    await store.close()
    return {
        "store": type(store).__name__,
        "module": sys.modules["teal_taskstore_entry"].__file__,
        "library": sys.modules["teal_taskstore"].__file__,
        "python": platform.python_version(),
        "entry_file": os.environ["TA_PERSISTENCE_MODULE"],
        "task_id": loaded.task_id,
        "status": loaded.status,
        "items": len(loaded.items),
        "history_messages": len(history.messages) if history is not None else None,
        "tool_runs": tool_runs,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run())))
