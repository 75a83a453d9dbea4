"""Services: the A/B router (separated mode)."""
