"""Users, groups and grants of a store served by ``mltrail server`` (see :mod:`.control`)."""
