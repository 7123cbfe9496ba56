#!/usr/bin/env python3
"""Generate brood(3) from the doc comments of the public headers.

Every public call carries a /** name() - summary ... */ block right before
its declaration; this collects them, header by header, into one man page so
that the page and the headers can never disagree.
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


def blocks(src):
    """Yield (comment, declaration) pairs."""
    for m in re.finditer(r'/\*\*(.*?)\*/\s*([^;{}#]*?\)\s*;|[^;{}#]*?;)', src, re.S):
        comment, decl = m.group(1), m.group(2)
        lines = []
        for l in comment.split('\n'):
            l = re.sub(r'^\s*\*? ?', '', l.rstrip())
            lines.append(l)
        text = '\n'.join(lines).strip()
        decl = ' '.join(decl.split())
        yield text, decl


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
        entries = list(blocks(src))
        if not entries:
            continue
        page.append('.SH "%s"' % SECTIONS.get(name, name).upper())
        page.append('From \\fI<brood/%s>\\fP.' % name)
        for text, decl in entries:
            first, _, rest = text.partition('\n')
            title = first.split(' - ', 1)[0].strip() or decl
            page.append('.SS %s' % esc(title))
            page.append('.nf')
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
