"""docs/BENCHMARKS.md, shared by the scripts under bench/: each script owns one
section between its own markers and rewrites only that. The text above the
first section is HEADER, written again on every run, so the page's
introduction stays the one kept here."""
import os

HEADER = """# Benchmarks

What Dexter's services cost, measured by the scripts under `bench/`
(`bench/README.md` says what each one measures, its targets, and how to run
it). Each section below is written whole by the script that measured it and
gives the date, machine, commit, software, setup and commands of its latest
run; earlier figures are in git history.

| section | measured by | command |
|---|---|---|
| API | `bench/api/run.sh` | `make bench` (builds the release services first) |
| Deployments on AWS (fake EC2) | `bench/deploy/bench.py` | `make services && bench/deploy/bench.py` |
| Deployments on Azure (fake ARM) | `bench/deploy/azure.py` | `make services && bench/deploy/azure.py` |
| getpid from memory | `bench/getpid/run.sh` | `make bench` |
| A GET while big deploys are planned and every cluster is listed | `bench/slices/bench.py` | `make services && bench/slices/bench.py` |
| Metrics: the GET throughput with metrics on and off | `bench/metrics/bench.py` | `make services && bench/metrics/bench.py` |

The load generator, the services and the fake share the machine's cores, so
a figure holds for the machine it was measured on, while it did nothing
else: compare runs of one quiet machine only. That is also why the API
benchmark judges the end-to-end GET as a share of a bare libmicrohttpd
server measured in alternating rounds beside it, not as a number of
requests per second.

"""

_FIRST = "<!-- bench:"


def markers(name):
    """The start and end markers of section `name` (api, deploy, ...)."""
    return "%s%s:start -->" % (_FIRST, name), "%s%s:end -->" % (_FIRST, name)


def write_section(doc, name, section):
    """Puts `section` (which begins and ends with the markers of `name`) in
    place of that section of `doc`, or after the others, below HEADER; the
    file is replaced whole (written aside, then renamed)."""
    start, end = markers(name)
    try:
        with open(doc) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    first = text.find(_FIRST)
    sections = text[first:] if first >= 0 else ""
    if start in sections and end in sections and sections.index(start) < sections.index(end):
        a, b = sections.index(start), sections.index(end) + len(end)
        sections = sections[:a] + section + sections[b:]
    else:
        sections = (sections.rstrip("\n") + "\n\n" if sections else "") + section + "\n"
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(HEADER + sections)
    os.replace(tmp, doc)
