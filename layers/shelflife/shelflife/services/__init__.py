"""The services floor: ingest, lifecycle, capacity, cleanup, reconcile, photos, stats,
placement and the admin operations. Each takes its collaborators (the ports of
``shelflife.domain``) in its constructor; ``shelflife.wiring`` builds them. No service
imports an adapter (tests/unit/test_architecture.py holds it)."""
