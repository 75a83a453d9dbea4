"""Queries over the derived tables: the filter language, search_runs, metric history."""
