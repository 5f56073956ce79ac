"""Wait for a condition with a deadline, instead of sleeping a fixed time and hoping."""

import time
from collections.abc import Callable


def wait_for(
    what: str, condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.1
) -> float:
    """Poll ``condition`` until it holds; return the seconds it took.

    Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds.
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started
