#!/usr/bin/python3
"""openapi-embed.py SPEC.yaml OUT.inc: the OpenAPI document as compact JSON in
a C string literal, for services/api/api_openapi.c to include. The api answers
GET /api/v1.0/openapi.json with exactly this text (tests/e2e/test_openapi.py
checks that it equals docs/openapi.yaml)."""
import json
import os
import sys

import yaml


def c_literal(text, width=100):
    """text as adjacent C string literals of at most `width` source bytes."""
    lines, piece = [], ""
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            esc = "\\" + ch
        elif ch == "?":
            esc = "\\?"         # no trigraphs
        elif 0x20 <= code < 0x7f:
            esc = ch
        else:                   # UTF-8 bytes, each as an octal escape
            esc = "".join("\\%03o" % b for b in ch.encode("utf-8"))
        if len(piece) + len(esc) > width:
            lines.append('"%s"' % piece)
            piece = ""
        piece += esc
    lines.append('"%s"' % piece)
    return "\n".join(lines)


def main():
    spec_path, out_path = sys.argv[1:3]
    with open(spec_path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    text = json.dumps(spec, ensure_ascii=False, separators=(",", ":"))
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("/* Generated from %s by scripts/openapi-embed.py: do not edit. */\n"
                % os.path.basename(spec_path))
        f.write(c_literal(text) + "\n")
    os.replace(tmp, out_path)


if __name__ == "__main__":
    main()
