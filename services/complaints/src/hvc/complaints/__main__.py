"""Entry point: `python -m hvc.complaints` serves the complaints stream app and its HTTP side."""

from hvc.complaints.bootstrap import bootstrap


def main() -> None:
    runtime, api = bootstrap()
    runtime.serve(api)


if __name__ == "__main__":
    main()
