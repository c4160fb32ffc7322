"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from paydesk.db.models.base import Base
from paydesk.db.models.customers import Customer

__all__ = ["Base", "Customer"]
