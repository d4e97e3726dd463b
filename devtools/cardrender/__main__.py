import sys

from devtools.cardrender.render import main

sys.exit(main())
