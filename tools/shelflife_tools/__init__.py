"""shelflife's tools: the ``shelflife`` command (an operator's client of the API, and
the local stack that runs the whole bundle on a laptop). Not part of the Lambda layer:
nothing here is deployed."""
