"""How the bot runs as a process: start-up and shutdown (runner), long polling, the background
jobs, Redis clients, outbound pacing to the Bot API, logs and metrics."""
