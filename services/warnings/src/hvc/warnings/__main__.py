"""Entry point: `python -m hvc.warnings` serves the warnings stream app and its HTTP side."""

from hvc.warnings.bootstrap import bootstrap


def main() -> None:
    runtime, api = bootstrap()
    runtime.serve(api)


if __name__ == "__main__":
    main()
