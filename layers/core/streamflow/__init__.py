"""StreamFlow core: the churn loop's shared code, shipped to every function as a Lambda layer.

Pure decision logic (``promotion``, ``ordering``, ``split``, ``contract``, ``features``)
never touches a service; ``steps`` does its I/O through the modules beside them (``storage``,
``online_store``, ``registry``, ``alias_moves``, ``lease``, ``month_order``, ...). Which file
holds each step of the loop: ``docs/architecture.md``.
"""

__version__ = "0.1.0"
