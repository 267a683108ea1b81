"""Error types shared by the CLI, configuration and lifecycle code (no imports: on every call's hot path)."""


class ConfigError(ValueError):
    """A configuration value is invalid. str() is the one-line message shown to the user."""

    def __init__(self, fieldname: str, value: object, want: str) -> None:
        self.field = fieldname
        self.value = value
        super().__init__(f"{fieldname}: invalid value {value!r}: {want}")


class RunqError(Exception):
    """A failure reported to the engine as one line (stderr and the --log file); exit status 1."""
