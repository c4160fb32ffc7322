"""``python -m paydesk`` runs the command-line interface."""

from paydesk.cli import main

if __name__ == "__main__":
    main()
