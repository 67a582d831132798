"""The security tests (docs/security.md) reuse the web checkout's world."""
from tests.web.conftest import web_world  # noqa: F401 (a fixture)
