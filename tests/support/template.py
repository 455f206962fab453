"""template.yaml for tests: the tools' reader (shelflife_tools.template)."""

from shelflife_tools.template import (
    ROOT,
    TEMPLATE,
    create_table_from_template,
    load_template,
    resource,
)

__all__ = ["ROOT", "TEMPLATE", "create_table_from_template", "load_template", "resource"]
