"""The domain floor: the store's rules and values, no I/O. The policy, placement's
arithmetic, the records, costs, compression and stripping, the errors and the clock,
and the ports (``repository``, ``storage``, ``ports``) the services talk through.

Imports nothing from ``shelflife.services`` or ``shelflife.adapters`` (tests/unit/
test_architecture.py holds it)."""
