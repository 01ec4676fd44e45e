"""Long runs against a real server (fuzzing, soak, crash loop): the scripts in scripts/
run them in full, the test suite runs short slices."""
