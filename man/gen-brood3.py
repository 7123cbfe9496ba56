#!/usr/bin/env python3
"""Generate brood(3) from the doc comments of the public headers.

Every public call carries a /** name() - summary ... */ block right before
its declaration (or declarations); this collects them, header by header,
after the header's other text (overview comments, flags, structs,
constants), into one man page so that the page and the headers can never
disagree.
Usage: gen-brood3.py OUT VERSION HEADER...
"""
import re
import sys

SECTIONS = {
    'handle.h': 'Handles: moving shared objects between processes',
    'shm.h': 'Segments, pools and arrays',
    'ringbuf.h': 'Rings: one producer, one consumer, any two processes',
    'fork.h': 'The forkserver',
    'brood.h': 'Version',
}


def esc(text):
    text = text.replace('\\', '\\e')
    return '\n'.join(('\\&' + l) if l.startswith(('.', "'")) else l for l in text.split('\n'))


def comment_text(comment):
    lines = [re.sub(r'^\s*\*? ?', '', l.rstrip()) for l in comment.split('\n')]
    return '\n'.join(lines).strip()


# Header lines that say nothing to a reader of the page.
NOISE = re.compile(r'^\s*(/\* SPDX-License-Identifier:.*\*/|#\s*include\b.*|#\s*ifn?def\b.*|'
                   r'#\s*define\s+BROOD_\w+_H\s*|#\s*endif\b.*|extern "C" \{|\})\s*$')


def parse(src):
    """(definitions, calls): the header's text outside the calls' doc blocks
    (overview comments, flags, structs, constants), and for each /** block
    the declarations right after it (every line up to a blank one), so that
    a block that documents two calls shows both."""
    defs, calls, pos = [], [], 0
    for m in re.finditer(r'/\*\*(.*?)\*/[ \t]*\n', src, re.S):
        if m.start() < pos:
            continue
        defs.append(src[pos:m.start()])
        d = re.match(r'(?:[ \t]*[^\s/][^\n]*\n)+', src[m.end():])
        text = d.group(0) if d else ''
        decls = [' '.join(x.split()) + ';' for x in text.split(';') if x.strip()]
        calls.append((comment_text(m.group(1)), decls))
        pos = m.end() + len(text)
    defs.append(src[pos:])
    kept = [l for l in ''.join(defs).split('\n') if not NOISE.match(l)]
    return re.sub(r'\n{3,}', '\n\n', '\n'.join(kept)).strip(), calls


def main():
    out, version, headers = sys.argv[1], sys.argv[2], sys.argv[3:]
    page = ['.TH BROOD 3 "" "brood %s" "Library Functions"' % version,
            '.SH NAME',
            'brood \\- fork-aware shared memory, SPSC rings and a forkserver for Linux process trees',
            '.SH SYNOPSIS',
            '.nf',
            '.B #include <brood/brood.h>',
            '.PP',
            'Link with \\fI$(pkg-config --libs brood)\\fP.',
            '.fi',
            '.SH DESCRIPTION',
            'Every call that can fail returns \\fB>= 0\\fP on success and \\fB\\-errno\\fP on failure;'
            ' objects come back through a \\fIret_\\fP out-parameter left untouched on failure.'
            ' Timeouts are milliseconds: \\-1 waits forever, 0 never blocks (\\-EAGAIN), > 0 bounds the'
            ' wait (\\-ETIMEDOUT) on CLOCK_MONOTONIC, kept across EINTR (unless a ring or'
            ' forkserver was made with BRD_RING_EINTR or BRD_FSRV_EINTR: then \\-EINTR).'
            ' The library never prints, never exits, and installs no signal handler unless asked'
            ' (brd_seg_sigbus_guard()); every fd it creates is CLOEXEC.']
    for path in headers:
        name = path.rsplit('/', 1)[-1]
        src = open(path, encoding='utf-8').read()
        defs, entries = parse(src)
        if not entries and not defs:
            continue
        page.append('.SH "%s"' % SECTIONS.get(name, name).upper())
        page.append('From \\fI<brood/%s>\\fP.' % name)
        if defs:
            # What the calls below refer to ("above", "see there"): the
            # header's overview, flags, structs and constants, as written.
            page.append('.SS Definitions')
            page.append('.nf')
            page.append(esc(defs))
            page.append('.fi')
        for text, decls in entries:
            first, _, rest = text.partition('\n')
            title = first.split(' - ', 1)[0].strip() or decls[0]
            page.append('.SS %s' % esc(title))
            page.append('.nf')
            for decl in decls:
                page.append('.B %s' % esc(decl))
            page.append('.fi')
            page.append('.PP')
            summary = first.split(' - ', 1)[1] if ' - ' in first else ''
            body = (summary + '\n' + rest).strip()
            page.append('.nf')
            page.append(esc(body))
            page.append('.fi')
    page += ['.SH SEE ALSO', '.BR brood (1),', '.BR memfd_create (2),', '.BR pidfd_open (2),',
             '.BR eventfd (2)']
    with open(out, 'w', encoding='utf-8') as f:
        f.write('\n'.join(page) + '\n')


if __name__ == '__main__':
    main()
