#!/usr/bin/env python3
"""The checkpoint journal (checkpoints/journal, formats.md 4) for the tests.

  cpj.py list JOURNAL            one line per entry: index offset length size
  cpj.py note JOURNAL K          entry K's signed note, on stdout (K < 0: from the end)
  cpj.py edit JOURNAL K MODE     edits entry K's note and writes its checksum again
                                 (a forger's edit, not damage): MODE sig-del (deletes
                                 byte 40 of the signature), sig-flip (flips a bit of
                                 it) or root (changes the root hash line)
  cpj.py has JOURNAL SIZE FILE   exit 0 if the journal holds a checkpoint of SIZE events
                                 whose note FILE begins with
  cpj.py split DIR               turns the store DIR's checkpoints back into the older
                                 layout (custos 0.1 to 0.3): checkpoints/<20-digit size>,
                                 one file each, mode 0444; no journal, no latest
"""
import base64
import hashlib
import os
import struct
import sys

MAGIC = b'CUSTOS-CHECKPTS\n'


def entries(data):
    assert data[:16] == MAGIC, 'not a checkpoint journal'
    off, out = 16, []
    while off < len(data):
        n = struct.unpack('>I', data[off:off + 4])[0]
        note = data[off + 4:off + 4 + n]
        assert hashlib.sha256(note).digest() == data[off + 4 + n:off + 36 + n], \
            'entry at %d damaged' % off
        out.append((off, n, note))
        off += n + 40
    return out


def edit_note(note, mode):
    t = note.decode()
    body, sigs = t.split('\n\n', 1)
    if mode == 'root':
        ls = body.split('\n')
        c = ls[2][0]
        ls[2] = ('B' if c == 'A' else 'A') + ls[2][1:]
        return ('\n'.join(ls) + '\n\n' + sigs).encode()
    lines = sigs.split('\n')
    pre, b64 = lines[0].rsplit(' ', 1)
    raw = bytearray(base64.b64decode(b64))
    if mode == 'sig-del':
        del raw[40]
    else:
        raw[40] ^= 1
    lines[0] = pre + ' ' + base64.b64encode(bytes(raw)).decode()
    return (body + '\n\n' + '\n'.join(lines)).encode()


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == 'split':
        d = os.path.join(path, 'checkpoints')
        for off, n, note in entries(open(os.path.join(d, 'journal'), 'rb').read()):
            f = os.path.join(d, '%020d' % int(note.split(b'\n')[1]))
            with open(f, 'wb') as out:
                out.write(note)
            os.chmod(f, 0o444)
        os.unlink(os.path.join(d, 'journal'))
        os.unlink(os.path.join(d, 'latest'))
        return
    data = open(path, 'rb').read()
    es = entries(data)
    if cmd == 'list':
        for k, (off, n, note) in enumerate(es):
            print(k, off, n, int(note.split(b'\n')[1]))
    elif cmd == 'has':
        got = open(sys.argv[4], 'rb').read()
        sys.exit(not any(int(note.split(b'\n')[1]) == int(sys.argv[3]) and got.startswith(note)
                         for off, n, note in es))
    elif cmd == 'note':
        sys.stdout.buffer.write(es[int(sys.argv[3])][2])
    elif cmd == 'edit':
        off, n, note = es[int(sys.argv[3])]
        new = edit_note(note, sys.argv[4])
        ent = struct.pack('>I', len(new)) + new + hashlib.sha256(new).digest() + \
            struct.pack('>I', len(new))
        open(path, 'wb').write(data[:off] + ent + data[off + n + 40:])
    else:
        sys.exit('usage: cpj.py list|note|edit JOURNAL ...')


if __name__ == '__main__':
    main()
