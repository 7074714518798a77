"""`python -m percpu ...`: the percpu command without the console script."""

from percpu.cli import main

if __name__ == "__main__":
    main()
