"""Entry point: `python -m hvc.gateway` serves the gateway stream app and its HTTP side."""

from hvc.gateway.bootstrap import bootstrap


def main() -> None:
    runtime, api = bootstrap()
    runtime.serve(api)


if __name__ == "__main__":
    main()
