"""Parsing the flags of one command the way runc (urfave/cli) does: -f, --flag, --flag=value, --flag value."""

from __future__ import annotations

from ..config import ConfigError


def parse(args: list[str], value_flags: set[str], bool_flags: set[str],
          aliases: dict[str, str] | None = None) -> tuple[dict[str, str | bool], list[str]]:
    """Return (flags by canonical name, positional arguments). Unknown flags are an error."""
    aliases = aliases or {}
    flags: dict[str, str | bool] = {}
    pos: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            pos += args[i + 1:]
            break
        if a.startswith("-") and a != "-":
            name, eq, inline = a.lstrip("-").partition("=")
            name = aliases.get(name, name)
            if name in bool_flags:
                flags[name] = inline.lower() not in ("false", "0") if eq else True
                i += 1
                continue
            if name in value_flags:
                if eq:
                    flags[name] = inline
                    i += 1
                elif i + 1 < len(args):
                    flags[name] = args[i + 1]
                    i += 2
                else:
                    raise ConfigError(f"--{name}", "", "flag needs a value")
                continue
            raise ConfigError("flag", a, "unknown flag for this command")
        pos.append(a)
        i += 1
    return flags, pos
