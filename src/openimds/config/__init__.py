"""The configuration: one model (`model.py`), the VM file schema (`vm_model.py`,
`identity_model.py`), how file, environment and flags are assembled (`loading.py`), how
errors are worded (`report.py`), listen addresses (`listen.py`) and the admin token
(`admin_token.py`)."""

from openimds.config.errors import ConfigError
from openimds.config.listen import ListenAddress, parse_listen
from openimds.config.loading import ENV_VARS, effective, json_schema, load_config, read_file
from openimds.config.model import Config

__all__ = [
    "ENV_VARS",
    "Config",
    "ConfigError",
    "ListenAddress",
    "effective",
    "json_schema",
    "load_config",
    "parse_listen",
    "read_file",
]
