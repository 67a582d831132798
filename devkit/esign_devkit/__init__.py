"""Developer tools for the purchase bot, apart from what production runs: the terminal and
browser playgrounds, the flow-testing kit (fake Telegram, harness, scenarios, pytest plugin,
fake payment providers), the flow diagram, the settings table, benchmarks and the load test.

`python -m esign_devkit COMMAND` (or `esign-dev COMMAND`); `python -m bot COMMAND` hands the
same commands here."""
