"""Every flow test also checks, at its end, that the bot answered every callback query and
every pre-checkout query it was given (Telegram shows a spinner, then an error, otherwise)."""
import pytest


@pytest.fixture(autouse=True)
def every_query_is_answered(request):
    # Asked for here, so the harness outlives this check.
    harness = request.getfixturevalue("esign_harness") if "esign_harness" in request.fixturenames else None
    yield
    if harness is not None:
        assert harness.unanswered_queries() == [], "queries the bot never answered"
