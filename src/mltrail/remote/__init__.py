"""A store behind ``mltrail server``: ``mltrail.Store("http://host:5050")``."""
