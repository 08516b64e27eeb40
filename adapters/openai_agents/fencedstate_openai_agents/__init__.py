"""fencedstate for the OpenAI Agents SDK: a fenced, compare-and-set ``Session`` and CAS tools.

```python

from fencedstate_openai_agents import FencedSession, state_tools

store = fs.open_store("state")
async with FencedSession("conversation-42", store=store, owner="worker-1") as session:
    result = await Runner.run(agent, "hello", session=session)   # instead of SQLiteSession(...)
```
"""

from fencedstate.tools import conflict_message

from ._session import FencedSession
from ._tools import COMMIT_TOOL, READ_TOOL, commit_state_tool, read_state_tool, state_tools
from .errors import InvalidItemError

__all__ = [
    "COMMIT_TOOL",
    "READ_TOOL",
    "FencedSession",
    "InvalidItemError",
    "commit_state_tool",
    "conflict_message",
    "read_state_tool",
    "state_tools",
]
