"""Benchmarks: the purchase against bare aiogram (run), the baseline alone (bare), one
change at a time (ablation); what an update costs in Redis (redis_counter) and a lean fake
Telegram (telegram)."""
