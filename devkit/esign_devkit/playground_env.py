"""What both playgrounds (the terminal one and the browser one) set up the same way: code limits
for exploring with one demo phone, and free ports for their web apps."""
from __future__ import annotations

import socket

from services.codes import CodePolicy


def generous_codes(policy: CodePolicy) -> CodePolicy:
    """The SMS vendor's limits (5 codes an hour for a phone) are for production: exploring the
    playground with its one demo phone asks for many more. The resend cool-down is kept."""
    return policy.model_copy(update={
        "phone_spacing_seconds": 0, "phone_per_hour": 1000, "phone_per_day": 10_000,
        "unproven_per_hour": 500, "unproven_per_day": 5000, "user_per_hour": 1000, "user_per_day": 10_000})


def is_port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp's site will
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
