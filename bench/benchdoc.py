"""docs/BENCHMARKS.md, shared by the scripts under bench/: each script owns one
section between its own markers and rewrites only that."""
import os

HEADER = """# Benchmarks

Figures measured on one machine by the scripts under `bench/` (see
`bench/README.md`). Each section is rewritten by the script that measures it;
the date, machine and commit of each run are in its section.

"""


def markers(name):
    """The start and end markers of section `name` (api, deploy, ...)."""
    return "<!-- bench:%s:start -->" % name, "<!-- bench:%s:end -->" % name


def write_section(doc, name, section):
    """Puts `section` (which begins and ends with the markers of `name`) in
    place of that section of `doc`, or at its end; the file is replaced
    whole (written aside, then renamed)."""
    start, end = markers(name)
    try:
        with open(doc) as f:
            text = f.read()
    except FileNotFoundError:
        text = HEADER
    if start in text and end in text and text.index(start) < text.index(end):
        a, b = text.index(start), text.index(end) + len(end)
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc)
