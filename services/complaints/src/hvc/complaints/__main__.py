"""Entry point: `python -m hvc.complaints` (or `serve`) serves the complaints stream app and its
HTTP side; `rebuild-views` writes its views again from its input topics (the service stopped)."""

import sys

from hvc.common.service import service_main
from hvc.complaints.bootstrap import bootstrap

if __name__ == "__main__":
    sys.exit(service_main("complaints", bootstrap, sys.argv[1:]))
