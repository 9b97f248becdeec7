"""Entry point: `python -m hvc.benefits` (or `serve`) serves the benefits stream app and its HTTP
side; `rebuild-views` writes its views again from its input topics (the service stopped)."""

import sys

from hvc.benefits.bootstrap import bootstrap
from hvc.common.service import service_main

if __name__ == "__main__":
    sys.exit(service_main("benefits", bootstrap, sys.argv[1:]))
