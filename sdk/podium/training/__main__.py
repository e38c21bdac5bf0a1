"""The training Job's entry point (the trainer image runs it):

    python -m podium.training --algorithm maml --task classification --features URL --labels URL ...

(the arguments are :class:`~podium.training.wire.TrainArgs`). It reads the training data through its
presigned URLs (within :data:`~podium.training.wire.MAX_DATA_BYTES`), resumes from the checkpoint a
previous pod of the Job left, trains, and PUTs the artifact and the history. On failure the message goes
to stderr, the termination log and a last progress report; exit code 1 (a bad input: retrying cannot help)
or 2 (bad arguments).
"""

from __future__ import annotations

import sys

from podium.training.run import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
