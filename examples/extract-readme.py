#!/usr/bin/env python3
"""Write the README's first C example to a file, so the test command builds
and runs exactly what the README shows."""
import re
import sys

text = open(sys.argv[1], encoding='utf-8').read()
blocks = re.findall(r'```c\n(.*?)```', text, re.S)
if not blocks:
    sys.exit('no C example in ' + sys.argv[1])
open(sys.argv[2], 'w', encoding='utf-8').write(blocks[0])
