#!/usr/bin/env python3
"""Every public call has a doc comment: each function declared in a public
header must be named in a /** ... */ block of that header.  Exit 1 listing
the undocumented ones."""
import re
import sys

missing = []
for path in sys.argv[1:]:
    src = open(path, encoding='utf-8').read()
    docs = ' '.join(re.findall(r'/\*\*(.*?)\*/', src, re.S))
    code = re.sub(r'/\*.*?\*/', '', src, flags=re.S)
    for m in re.finditer(r'^[A-Za-z_][\w \*]*?\b(brd_\w+)\s*\(', code, re.M):
        name = m.group(1)
        if not re.search(r'\b' + name + r'\b', docs):
            missing.append('%s: %s' % (path.rsplit('/', 1)[-1], name))
for m in missing:
    print('undocumented:', m)
sys.exit(1 if missing else 0)
