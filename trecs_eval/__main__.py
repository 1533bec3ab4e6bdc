import sys

from trecs_eval.cli import main

sys.exit(main())
