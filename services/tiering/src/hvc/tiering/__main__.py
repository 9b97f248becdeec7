"""Entry point: `python -m hvc.tiering` serves the tiering stream app and its HTTP side."""

from hvc.tiering.bootstrap import bootstrap


def main() -> None:
    runtime, api = bootstrap()
    runtime.serve(api)


if __name__ == "__main__":
    main()
