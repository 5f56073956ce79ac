"""Operation deadlines enforced by one timer, instead of one timer per operation."""

import asyncio


class _Entry:
    __slots__ = ("cancelling", "deadline")

    def __init__(self, deadline: float, cancelling: int) -> None:
        self.deadline = deadline
        # The task's pending cancel requests when it entered, as asyncio.timeout keeps.
        self.cancelling = cancelling


class OperationDeadlines:
    """Cancels operations that run past ``seconds``; late ones raise ``TimeoutError``.

    ``asyncio.timeout()`` schedules and cancels a timer per operation, which costs about as
    much client time as a Redis command. Here a single timer checks every in-flight operation
    each quarter of the limit, so an operation is stopped after at most 1.25 x ``seconds``.
    Cancellation from elsewhere is passed through untouched, as ``asyncio.timeout`` does.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[asyncio.Task[object], _Entry] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def enter(self) -> asyncio.Task[object]:
        """Start the deadline of the current task's operation."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("operation deadlines need a running asyncio task")
        loop = task.get_loop()
        self._entries[task] = _Entry(loop.time() + self.seconds, task.cancelling())
        # A timer left on another (perhaps closed) loop must not stand in for this one.
        if self._timer is None or self._timer.cancelled() or self._timer_loop is not loop:
            self._timer = loop.call_later(self.seconds / 4, self._check, loop)
            self._timer_loop = loop
        return task

    def leave(self, task: asyncio.Task[object]) -> bool:
        """End the deadline; ``True`` when this task was cancelled only for being late."""
        entry = self._entries.pop(task, None)
        if task not in self._expired:
            return False
        self._expired.discard(task)
        cancelling = entry.cancelling if entry else 0
        return task.uncancel() <= cancelling

    def in_flight(self, loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[object]]:
        """The operations running on ``loop`` now, other than the current task."""
        current = asyncio.current_task()
        return [t for t in self._entries if t.get_loop() is loop and t is not current]

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, entry in list(self._entries.items()):
            if entry.deadline <= now:
                self._expired.add(task)
                # Kept in _entries until leave(), which needs the cancel count at entry.
                entry.deadline = float("inf")
                task.cancel()
        live = any(entry.deadline != float("inf") for entry in self._entries.values())
        self._timer = loop.call_later(self.seconds / 4, self._check, loop) if live else None
