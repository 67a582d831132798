"""`python -m bot playground --web`: the playground in the browser.

A local page that looks and behaves like a Telegram chat with the bot (edits in place, inline and
reply keyboards, sharing a phone, invoices paid through pre-checkout and payment), several buyers
side by side, the SMS codes the console backend "sent", and the staff group's forum topics.
It runs the production dispatcher (bot.app) on the fake Telegram of the tests
(esign_devkit.testing.fake_telegram); devkit/esign_devkit/webplay/server.py is the server,
devkit/esign_devkit/webplay/static/ the page.
"""
from esign_devkit.webplay.server import WebPlayground, build_web_app, main

__all__ = ["WebPlayground", "build_web_app", "main"]
