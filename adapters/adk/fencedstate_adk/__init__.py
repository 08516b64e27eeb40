"""fencedstate for Google ADK: a compare-and-set, fenceable ``FencedSessionService``.

```python
import fencedstate as fs
from fencedstate_adk import FencedSessionService

service = FencedSessionService("state/")          # or FencedSessionService(fs.open_store(...))
runner = Runner(agent=agent, app_name="app", session_service=service)
```
"""

from ._service import FencedSessionService, SessionClaim
from .errors import SessionMissingError, SharedStateConflictError, StaleSessionError

__all__ = [
    "FencedSessionService",
    "SessionClaim",
    "SessionMissingError",
    "SharedStateConflictError",
    "StaleSessionError",
]
