"""The whole bundle on one machine, no Docker: moto's server for S3, DynamoDB (with
streams) and SQS, b2sdk's simulator for B2, the template's event sources played onto
the real handlers (``LocalStack``)."""

from pathlib import Path

# Where `shelflife local` keeps its files (logs, the token secret), in the folder it was
# started in, and the file in it that tells the command how to reach the running stack.
LOCAL_FOLDER = Path(".shelflife-local")
STACK_FILE = "stack.json"
