"""``python -m streamlabel.cli``."""

from streamlabel.cli import main

main()
