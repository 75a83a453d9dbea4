import pytest

import mltrail


@pytest.fixture(autouse=True)
def autolog_off():
    """Each test turns autologging on itself; after it every library is as it was."""
    yield
    mltrail.autolog(disable=True)
