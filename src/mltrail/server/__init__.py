"""``mltrail server``: one store folder served to remote clients over HTTP."""
