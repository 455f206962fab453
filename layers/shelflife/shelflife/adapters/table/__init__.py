"""The table: the pynamodb models and repository (``dynamo``) and its in-memory twin
(``memory``), both implementing ``shelflife.domain.repository.Repository``."""
