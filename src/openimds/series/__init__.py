"""Per-second request figures for charts (GET /metrics/series), sampled from the request
metrics once a second."""
