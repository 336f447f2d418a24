"""The connection layer under the ASGI app: what one client connection may cost before the app sees it.

uvicorn's httptools protocol buffers a request head of any size, waits forever for one to finish, and
accepts connections until the process runs out of file descriptors. `EdgeProtocol` bounds all three:
head size, URL length and header count (431/414), a header timeout (408) and an idle timeout, and a
connection cap below the open-file limit (503) that leaves descriptors for the gateway's own use.
"""

from .fds import ConnectionBudget, connection_budget, open_fds, raise_nofile_limit
from .limits import EdgeLimits, EdgeState
from .protocol import EdgeProtocol

__all__ = [
    "ConnectionBudget",
    "EdgeLimits",
    "EdgeProtocol",
    "EdgeState",
    "connection_budget",
    "open_fds",
    "raise_nofile_limit",
]
