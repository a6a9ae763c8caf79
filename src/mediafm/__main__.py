import sys

from mediafm.cli.main import main

sys.exit(main())
