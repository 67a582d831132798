"""Fixtures for the browser playground: the playground on the tests' Redis, its web app behind
aiohttp's test server, and (for the browser tests) headless Chromium through Playwright."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from esign_devkit.webplay.server import WebPlayground, build_web_app

from config.settings import Settings


def playground_settings() -> Settings:
    return Settings(_env_file=None, bot_token=None, code_secret="test-secret")


@pytest.fixture
async def playground(redis, clock):
    world = await WebPlayground.create(playground_settings(), redis, clock=clock, store="test Redis")
    yield world
    await world.close()


@pytest.fixture
async def server(playground):
    """The page and its API on a free local port."""
    test_server = TestServer(build_web_app(playground), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
async def client(server):
    async with TestClient(server) as http:
        yield http
