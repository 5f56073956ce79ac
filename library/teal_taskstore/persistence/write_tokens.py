"""Write tokens: one per write, unique across every process that writes to a store."""

import itertools
import os
import secrets


class WriteTokens:
    """A random prefix and a counter, in hex; cheap enough to take one per write.

    A forked child (gunicorn ``--preload``, Celery prefork, multiprocessing) inherits the
    parent's prefix and counter, so :func:`os.register_at_fork` gives every child a new
    prefix: two processes never hand out the same token.
    """

    def __init__(self) -> None:
        self._prefix = ""
        self._counter = itertools.count()
        self.reseed()

    def reseed(self) -> None:
        """Start a new sequence under a fresh random prefix."""
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        """A token no other write, in this process or another, has used."""
        return f"{self._prefix}{next(self._counter):x}"


write_tokens = WriteTokens()
os.register_at_fork(after_in_child=write_tokens.reseed)
