"""One module per x_tables extension: ``m_<name>.py`` for matches, ``t_<name>.py`` for targets.

Importing this package registers them all in ``pktpath.ext.registry``.
"""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name.startswith(("m_", "t_")):
        importlib.import_module(f"{__name__}.{_mod.name}")
