"""The adapters floor: the only code that talks to a provider (boto3, b2sdk, pynamodb):
the table, the storage backends, queues, the table's stream, invoking the other
functions, and the R2/B2 credentials. Each implements a port of ``shelflife.domain`` and
turns its provider's errors into ``shelflife.domain.errors``."""
