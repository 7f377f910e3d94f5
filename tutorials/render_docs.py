"""Run every tutorial and record what the docs pages include: figures and printed output.

    python tutorials/render_docs.py            # all tutorials
    python tutorials/render_docs.py 03 07      # some of them

Figures go to docs/tutorials/figures/, each tutorial's output to docs/tutorials/output/NN_topic.txt.
The pages include these files and the tutorial sources themselves, so they cannot drift from the
code; run this after changing a tutorial and commit the results.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = Path("docs") / "tutorials" / "figures"
OUTPUT = ROOT / "docs" / "tutorials" / "output"


def main() -> int:
    wanted = sys.argv[1:]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    # temporary folders differ on every run; the recorded output names them by one placeholder
    temporary = re.compile(re.escape(tempfile.gettempdir()) + r"/[\w.-]+")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    for script in sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py")):
        if wanted and script.name[:2] not in wanted:
            continue
        print(f"running {script.name}", file=sys.stderr)
        result = subprocess.run([sys.executable, str(script.relative_to(ROOT)), "--out",
                                 str(FIGURES)], cwd=ROOT, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return 1
        text = temporary.sub("$TMPDIR", result.stdout)
        (OUTPUT / f"{script.stem}.txt").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
