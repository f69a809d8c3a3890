#!/bin/sh
# Every benchmark of issue #3, one after the other (about 14 minutes on 2 cores), then the
# webinar registrants against meetings at a known limit and with none.
# Exit 0 when every target is met, 1 when some are not, 2 when a run could not be made.
cd "$(dirname "$0")/.." || exit 2
python=.venv/bin/python
worst=0
keep() { [ "$1" -gt "$worst" ] && worst=$1; }
"$python" bench/throughput.py --case all "$@"
keep $?
"$python" bench/throughput.py --target webinars --case known nolimit --seconds 30 "$@"
keep $?
"$python" bench/enqueue.py --rows 10000 100000 1000000  # the target at each size, and flat memory
keep $?
"$python" bench/round_trips.py  # a count, not a target: it does not change the exit code
exit "$worst"
