"""Run a command with a lower open-file limit: `python -m tests.support.nofile N command args...`.

The gateway raises its soft limit to the hard one at start, so both are set to N: a test can then fill
the gateway's descriptor table with a few hundred sockets instead of tens of thousands.
"""

from __future__ import annotations

import os
import resource
import sys


def main() -> None:
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    os.execvp(sys.argv[2], sys.argv[2:])


if __name__ == "__main__":
    main()
