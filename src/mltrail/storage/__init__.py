"""The store: layout, event schemas, the append-only log. Knows nothing of ML."""
