"""Replaces one benchmark's section of docs/benchmarks.md, leaving the others as they are.

A section is the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`; a missing section
is appended. Usable as a module (`update`) or as `python3 doc_section.py DOC NAME < TEXT`.
"""
import sys
from pathlib import Path

TITLE = "# Benchmarks\n\nNumbers are recorded here with the command that reproduces them.\n"


def update(doc: Path, name: str, text: str) -> None:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text.strip()}\n{end}\n"
    current = doc.read_text() if doc.exists() else TITLE
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        _, tail = rest.split(end, 1)
        current = head + block + tail.lstrip("\n")
    else:
        current = current.rstrip("\n") + "\n\n" + block
    doc.write_text(current)


if __name__ == "__main__":
    update(Path(sys.argv[1]), sys.argv[2], sys.stdin.read())
