"""Run by the job runner's warm interpreter in tests: reports what the container sees, then exits.

    python -m tests.local.warm_probe CODE [hog]
"""

import json
import os
import sys

if __name__ == "__main__":
    if sys.argv[2:] == ["hog"]:
        hog = b"x" * (1 << 30)  # touches 1 GiB
    print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ),
                      "session_leader": os.getsid(0) == os.getpid()}), flush=True)
    sys.exit(int(sys.argv[1]))
