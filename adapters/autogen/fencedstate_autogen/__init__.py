"""fencedstate for AutoGen: a fenced ``Memory``, fenced agent-state save/load, and CAS tools.

```python

from fencedstate_autogen import FencedMemory, load_agent_state, save_agent_state, state_tools

store = fs.open_store("state")
memory = FencedMemory(store, key="memory/team")        # instead of ListMemory()
```
"""

from fencedstate.tools import conflict_message

from ._agent_state import AgentStateClaim, StatefulAgent, load_agent_state, save_agent_state
from ._memory import FencedMemory, FencedMemoryConfig, decode_content, encode_content
from ._tools import COMMIT_TOOL, READ_TOOL, commit_state_tool, read_state_tool, state_tools

__all__ = [
    "COMMIT_TOOL",
    "READ_TOOL",
    "AgentStateClaim",
    "FencedMemory",
    "FencedMemoryConfig",
    "StatefulAgent",
    "commit_state_tool",
    "conflict_message",
    "decode_content",
    "encode_content",
    "load_agent_state",
    "read_state_tool",
    "save_agent_state",
    "state_tools",
]
