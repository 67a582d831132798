"""Redis replies as text.

The clients are made with decode_responses=True, so a string reply (a value, a key, a member)
is a str already; one made without it gives bytes, decoded here, so the services work with
either. The checks also tell the type checker what the client's wide reply types hold.
"""
from __future__ import annotations


def text(reply: object) -> str:
    """A string reply as text."""
    if isinstance(reply, str):
        return reply
    if isinstance(reply, bytes):
        return reply.decode()
    raise TypeError(f"expected a string reply from Redis, got {type(reply).__name__}")


def text_or_none(reply: object) -> str | None:
    """A string reply as text; None for a nil reply (a missing key)."""
    return None if reply is None else text(reply)
