"""The tracking API: Store, Run, and the module-level conveniences."""
