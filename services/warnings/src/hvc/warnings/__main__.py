"""Entry point: `python -m hvc.warnings` (or `serve`) serves the warnings stream app and its HTTP
side; `rebuild-views` writes its views again from its input topics (the service stopped)."""

import sys

from hvc.common.service import service_main
from hvc.warnings.bootstrap import bootstrap

if __name__ == "__main__":
    sys.exit(service_main("warnings", bootstrap, sys.argv[1:]))
