"""fencedstate for Microsoft Agent Framework: history, sessions and checkpoints, lost by nobody;
tool calls whose side effects run once (``EffectMiddleware``).

```python
from agent_framework import Agent, WorkflowBuilder
from fencedstate_agent_framework import (
    FencedCheckpointStorage, FencedHistoryProvider, FencedSessionStore,
)

agent = Agent(client=client, context_providers=[FencedHistoryProvider("state/")])
sessions = FencedSessionStore("state/")            # or any fs.Store / URL for fs.open_store
workflow = WorkflowBuilder(start_executor=..., checkpoint_storage=FencedCheckpointStorage("state/"))
```
"""

from ._checkpoints import FencedCheckpointStorage
from ._common import SessionClaim
from ._history import FencedHistoryProvider
from ._sessions import FencedSessionStore
from .effects import EffectMiddleware
from .errors import (
    CheckpointConflictError,
    CheckpointNotFoundError,
    InvalidCheckpointError,
    StaleHistoryError,
    StaleSessionError,
)

__all__ = [
    "CheckpointConflictError",
    "CheckpointNotFoundError",
    "EffectMiddleware",
    "FencedCheckpointStorage",
    "FencedHistoryProvider",
    "FencedSessionStore",
    "InvalidCheckpointError",
    "SessionClaim",
    "StaleHistoryError",
    "StaleSessionError",
]
