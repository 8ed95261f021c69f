"""`python -m charlstm` runs the command line (torchrun uses this form too)."""
from charlstm.cli import main

if __name__ == "__main__":
    main()
