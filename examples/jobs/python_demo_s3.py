"""Word count over a small bounded stream, printed to the TaskManager's and JobManager's log.

Run by the Flink Kubernetes Operator through PythonDriver:
    -pyclientexec /usr/bin/python3 -py /opt/flink/usrlib/python_demo_s3.py [--rows N]
"""

import argparse
import logging
import sys

from pyflink.common import Types
from pyflink.datastream import StreamExecutionEnvironment

WORDS = "flink reads s3 through a plugin and flink runs python on kubernetes".split()


def word_count(rows: int) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    lines = [" ".join(WORDS[i % len(WORDS):] + WORDS[: i % len(WORDS)]) for i in range(rows)]
    (
        env.from_collection(lines, type_info=Types.STRING())
        .flat_map(lambda line: [(w, 1) for w in line.split()],
                  output_type=Types.TUPLE([Types.STRING(), Types.INT()]))
        .key_by(lambda pair: pair[0])
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .print()
    )
    env.execute("python_demo_s3")


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10, help="how many lines to count")
    known, _ = parser.parse_known_args()
    word_count(known.rows)
