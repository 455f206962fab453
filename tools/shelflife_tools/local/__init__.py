"""The whole bundle on one machine, no Docker: moto's server for S3, DynamoDB (with
streams) and SQS, b2sdk's simulator for B2, the template's event sources played onto
the real handlers (``LocalStack``)."""
