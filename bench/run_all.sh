#!/bin/sh
# Every benchmark of issue #3, one after the other (about 11 minutes on 2 cores).
# Exit 0 when every target is met, 1 when some are not, 2 when a run could not be made.
cd "$(dirname "$0")/.." || exit 2
python=.venv/bin/python
"$python" bench/throughput.py --case all "$@"
throughput=$?
"$python" bench/enqueue.py --rows 10000 100000 1000000  # the target at each size, and flat memory
enqueue=$?
"$python" bench/round_trips.py  # a count, not a target: it does not change the exit code
[ "$throughput" -ge "$enqueue" ] && exit "$throughput"
exit "$enqueue"
