"""`python -m worker.simulator`: run the Graph simulator in the foreground."""

from worker.simulator.server import main

raise SystemExit(main())
