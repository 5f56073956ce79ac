"""The stand-in framework's exceptions (fact 6): built with one ``message``, read as such."""


class AgentsException(Exception):
    """Base of the framework's exceptions."""


class _WithMessage(AgentsException):
    message: str

    def __init__(self, message: str) -> None:
        self.message = message


class AgentInvokeException(_WithMessage):
    """Invoking (or resuming) an agent failed."""


class PersistenceCreateError(_WithMessage):
    """A task could not be created."""


class PersistenceLoadError(_WithMessage):
    """A task could not be loaded."""


class PersistenceUpdateError(_WithMessage):
    """A task could not be updated."""


class PersistenceDeleteError(_WithMessage):
    """A task could not be deleted."""
