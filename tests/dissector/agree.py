#!/usr/bin/env python3
"""agree.py TSHARK.json CAPTURE.decode.json: the Wireshark dissector and
veil-capture (two decoders over the same libproto observer) must report the
same records: per record, direction, sequence number, type, body status and
message text, in stream order per direction.  TSHARK.json is
`tshark -T json --no-duplicate-keys -J veil` output; CAPTURE.decode.json is
veil-capture's --json output (captures/README.md).  Prints the differences
and exits 1 when there are any."""
import json
import sys

TYPES = {'1': 'handshake', '2': 'alert', '3': 'appdata', '4': 'key_update'}
STATUS = {'decrypted': 'decrypted', 'no key for this session': 'no_key',
          'authentication failed': 'auth_failed', 'unsupported or unknown suite': 'unsupported',
          'malformed body': 'malformed'}


def find(obj, key):
    """First value of key anywhere in the nested dict/list obj, or None."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            r = find(v, key)
            if r is not None:
                return r
    elif isinstance(obj, list):
        for v in obj:
            r = find(v, key)
            if r is not None:
                return r
    return None


def tshark_records(path):
    out = {'C>S': [], 'S>C': []}
    for pkt in json.load(open(path)):
        layers = pkt['_source']['layers']
        recs = layers.get('veil', [])
        if isinstance(recs, dict):
            recs = [recs]
        for r in recs:
            seq = find(r, 'veil.seq')
            if seq is None:
                continue  # the end-of-stream item on a FIN frame
            d = 'C>S' if find(r, 'veil.direction') == '0' else 'S>C'
            st = find(r, 'veil.decrypt_status')
            if st is not None:
                status = STATUS.get(st, st)
            else:
                status = 'plaintext' if find(r, 'veil.crc.status') == '1' else 'bad_crc'
            text = find(r, 'veil.app.text')
            if text is None and find(r, 'veil.chat.text') is not None:
                # A chat line is shown as sender and text; its payload is
                # u8 name_len || name || text (docs/SERVICES.md §2): rebuild
                # those exact bytes to compare with veil-capture's raw text.
                sender = find(r, 'veil.chat.sender') or ''
                text = chr(len(sender.encode())) + sender + find(r, 'veil.chat.text')
            out[d].append((int(seq), TYPES.get(find(r, 'veil.type'), '?'), status, text))
    return out


def capture_records(path):
    out = {'C>S': [], 'S>C': []}
    for line in open(path):
        ev = json.loads(line)
        if ev.get('event') != 'record':
            continue
        text = (ev.get('message') or {}).get('text')
        out[ev['dir']].append((ev['seq'], ev['type'], ev['status'], text))
    return out


def main():
    a, b = tshark_records(sys.argv[1]), capture_records(sys.argv[2])
    bad = 0
    for d in ('C>S', 'S>C'):
        if a[d] != b[d]:
            bad += 1
            print('%s differs:\n  tshark:       %s\n  veil-capture: %s' % (d, a[d], b[d]))
    if not bad:
        print('%d records agree' % (len(a['C>S']) + len(a['S>C'])))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
