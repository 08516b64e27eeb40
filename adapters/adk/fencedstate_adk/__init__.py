"""fencedstate for Google ADK: a compare-and-set, fenceable ``FencedSessionService``, and
``EffectCallbacks`` (tool callbacks that run each tool call's side effect once).

```python
import fencedstate as fs
from fencedstate_adk import FencedSessionService

service = FencedSessionService("state/")          # or FencedSessionService(fs.open_store(...))
runner = Runner(agent=agent, app_name="app", session_service=service)
```
"""

from fencedstate.integrations import SessionClaim

from ._service import FencedSessionService
from .effects import EffectCallbacks
from .errors import (
    SessionExistsError,
    SessionMissingError,
    SharedStateConflictError,
    StaleSessionError,
)

__all__ = [
    "EffectCallbacks",
    "FencedSessionService",
    "SessionClaim",
    "SessionExistsError",
    "SessionMissingError",
    "SharedStateConflictError",
    "StaleSessionError",
]
