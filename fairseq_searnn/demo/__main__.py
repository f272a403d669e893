"""``python -m fairseq_searnn.demo``: the same as ``fairseq-searnn-demo``."""

from fairseq_searnn.demo.cli import main

main()
