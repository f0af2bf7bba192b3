"""StreamFlow core: the churn loop's shared code, shipped to every function as a Lambda layer.

Pure decision logic (``promotion``, ``split``, ``contract``, ``features``) never touches a
service; the I/O helpers (``storage``, ``registry``) are the only modules that do.
"""

__version__ = "0.1.0"
