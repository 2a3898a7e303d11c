"""``sysctl -a`` text (or any ``key = value`` subset) -> ``Sysctls``.  Sans-IO.

Keys are normalised to the dotted form with device names verbatim, the form
``Sysctls.conf()`` builds (``net.ipv4.conf.eth0.100.rp_filter``): ``sysctl -a`` prints a
dot inside a device name as ``/`` (``net.ipv4.conf.eth0/100.rp_filter``), and the
``/proc/sys`` spelling uses ``/`` as separator (``net/ipv4/conf/eth0.100/rp_filter``);
both become dots.
"""

from __future__ import annotations

from pktpath.errors import ParseError
from pktpath.model.net import Sysctls


def normalise_key(key: str) -> str:
    """One canonical spelling of a sysctl name (see the module docstring)."""
    key = key.strip()
    if key.startswith("/proc/sys/"):
        key = key[len("/proc/sys/"):]
    return key.replace("/", ".")


def parse_sysctl(text: str, source: str, *, lenient: bool = False) -> Sysctls:
    """Parse ``key = value`` (or ``key=value``) lines; ``#`` and ``;`` start comments.

    A later line for the same key wins, as with ``sysctl -p``.  A line that is not
    ``key = value`` raises ``ParseError`` (skipped when ``lenient``).
    """
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        key = normalise_key(key)
        if not sep or not key or any(c.isspace() for c in key):
            if lenient:
                continue
            raise ParseError(source, lineno, "expected 'key = value'", text=raw)
        values[key] = value.strip()
    return Sysctls(values=values)
