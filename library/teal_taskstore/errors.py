"""The library's errors.

Every failed operation raises a :class:`PersistenceError` subclass whose message names the
operation and the task or request id, with the underlying cause chained (``raise ... from``).
Bad settings raise :class:`ConfigurationError`, which names the environment variable.
"""


class PersistenceError(Exception):
    """Base class of every error raised by a persistence operation."""


class PersistenceCreateError(PersistenceError):
    """A task could not be created, for example because its id already exists."""


class PersistenceLoadError(PersistenceError):
    """A task could not be loaded, for example because the stored data does not parse."""


class PersistenceUpdateError(PersistenceError):
    """A task could not be updated, for example because it does not exist."""


class PersistenceConflictError(PersistenceUpdateError):
    """Somebody else wrote the task since this copy of it was loaded or written."""


class PersistenceDeleteError(PersistenceError):
    """A task could not be deleted, for example because it does not exist."""


class PersistenceNotReplicatedError(PersistenceError):
    """A write reached the master, but fewer replicas than ``TA_REDIS_WAIT_REPLICAS``
    acknowledged it in time: it is stored, and may be lost if the master fails now."""


class CreateNotReplicatedError(PersistenceCreateError, PersistenceNotReplicatedError):
    """A create that ``PersistenceNotReplicatedError`` describes."""


class UpdateNotReplicatedError(PersistenceUpdateError, PersistenceNotReplicatedError):
    """An update that ``PersistenceNotReplicatedError`` describes."""


class DeleteNotReplicatedError(PersistenceDeleteError, PersistenceNotReplicatedError):
    """A delete that ``PersistenceNotReplicatedError`` describes."""


class ConfigurationError(ValueError):
    """A setting is missing or invalid; the message names the variable and what was expected."""


def hide_secret(error: BaseException, secret: str | None) -> None:
    """Replace ``secret`` in the arguments of ``error`` and of every exception chained to it.

    A server may echo a command's arguments in its error (``unknown command 'HELLO', with args
    beginning with: ... <password>``); this runs before such an error is shown or chained.
    """
    if not secret:
        return
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(
            arg.replace(secret, "***") if isinstance(arg, str) else arg for arg in current.args
        )
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
