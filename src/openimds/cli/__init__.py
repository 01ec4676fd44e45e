"""The command line: the root group and built-in commands (`main.py`), the options and
configuration loading every command shares (`options.py`), and the admin API client the
feature commands use (`admin_client.py`). Each feature's command groups live in its own
package (`identity/cli.py`, `events/cli.py`, `attested/cli.py`)."""
