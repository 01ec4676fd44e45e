from __future__ import annotations

from tests.support.server import server_fixture

# One demo-VM server shared by the read-only tests (throttling off).
# Many tests send refused tokens to this one server: more than one source may send
# per minute (tests/integration/test_admin_logins.py tests the limit).
live = server_fixture("live", scope="session", env={"OPENIMDS_ADMIN_LOGIN_FAILURES": "0"})
