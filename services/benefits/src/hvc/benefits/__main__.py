"""Entry point: `python -m hvc.benefits` serves the benefits stream app and its HTTP side."""

from hvc.benefits.bootstrap import bootstrap


def main() -> None:
    runtime, api = bootstrap()
    runtime.serve(api)


if __name__ == "__main__":
    main()
