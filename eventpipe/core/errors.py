"""The one exception a configuration problem raises.

Every problem a user can make in the config file — bad YAML, an unknown key, a wrong type, an
unset environment variable, a regex that does not compile, a receiver that does not exist —
surfaces as `ConfigError` whose message says where: file, line and key path, e.g.
``config.yaml:12: receivers[0].file.maxsize: expected an integer, got 'big'``. It lives in core
because components that compile their own config (the route tree) raise it too; the config
package's loader adds file and line.
"""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(ValueError):
    """The configuration is invalid; the message names file, line and key path."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        path: str | None = None,
        more: Sequence[str] = (),
    ) -> None:
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        prefix = f"{path}: " if path else ""
        # Further problems found in the same pass follow on their own lines, already located.
        super().__init__("\n".join([f"{where}{prefix}{message}", *more]))
        self.source = source
        """File name (or ``<string>``) the config came from, if known."""
        self.line = line
        """1-based line of the offending key, if known."""
        self.path = path
        """Key path such as ``receivers[0].file.maxsize``, if known."""
        self.detail = message
        """The (first) message without its location prefix."""
        self.more = tuple(more)
        """Further located problems, one formatted line each."""
