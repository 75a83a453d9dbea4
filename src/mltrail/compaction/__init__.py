"""Compaction: event files → Parquet tables."""
