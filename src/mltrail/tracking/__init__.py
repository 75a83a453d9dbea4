"""The tracking part: runs and how they are written (Run), started and read (Tracker)."""
