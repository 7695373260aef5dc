"""``python -m clstm.config`` prints the configuration reference;
``python -m clstm.config --update docs/configuration.md`` rewrites the page in place."""

import sys

from clstm.config.reference import reference_markdown, update_page

if sys.argv[1:2] == ["--update"] and len(sys.argv) == 3:
    update_page(sys.argv[2])
else:
    print(reference_markdown(), end="")
