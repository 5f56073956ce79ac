"""The stand-in framework's content types."""

from enum import Enum

from pydantic import BaseModel


class ContentType(Enum):
    """Kind of an item's content (a plain Enum in the framework)."""

    IMAGE = "image"
    TEXT = "text"


class MultiModalItem(BaseModel):
    """One piece of content."""

    content_type: ContentType = ContentType.TEXT
    content: str
