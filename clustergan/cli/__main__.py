import sys

from clustergan.cli import main

sys.exit(main())
