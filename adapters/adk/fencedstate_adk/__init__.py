"""fencedstate for Google ADK: a compare-and-set, fenceable ``FencedSessionService``.

```python
import fencedstate as fs
from fencedstate_adk import FencedSessionService

service = FencedSessionService("state/")          # or FencedSessionService(fs.open_store(...))
runner = Runner(agent=agent, app_name="app", session_service=service)
```
"""

from fencedstate.integrations import SessionClaim

from ._service import FencedSessionService
from .errors import (
    SessionExistsError,
    SessionMissingError,
    SharedStateConflictError,
    StaleSessionError,
)

__all__ = [
    "FencedSessionService",
    "SessionClaim",
    "SessionExistsError",
    "SessionMissingError",
    "SharedStateConflictError",
    "StaleSessionError",
]
