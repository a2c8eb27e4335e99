"""Reports: documents built from the gold tables for people to read (the risk-history dashboard)."""
