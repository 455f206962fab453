"""shelflife: a serverless image store that keeps itself cheap and healthy.

This package is the Lambda layer shared by every function; in Lambda it is importable
from /opt/python/shelflife. Importing it must stay cheap: submodules import what they
need, so a function pays only for the backends and services it uses.
"""

__version__ = "0.1.0"
