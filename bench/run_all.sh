#!/bin/sh
# Every benchmark of issue #3, one after the other (up to about 8 minutes on 2 cores).
# Exit 0 when every target is met, 1 when some are not, 2 when a run could not be made.
cd "$(dirname "$0")/.." || exit 2
python=.venv/bin/python
"$python" bench/throughput.py --case all "$@"
throughput=$?
"$python" bench/enqueue.py
enqueue=$?
[ "$throughput" -ge "$enqueue" ] && exit "$throughput"
exit "$enqueue"
