"""Scheduled events, the shell side: live state, persistence, admin API, scenarios, metrics.

The rules live in `openimds.core.scheduled_events`; this package feeds them the clock,
keeps their state in memory and in the store, and exposes them to operators.
"""
