"""Gold tables: per-question facts derived incrementally, one UTC day at a time, from silver."""
