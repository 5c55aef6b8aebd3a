#!/usr/bin/env python3
"""rewrite_port.py OLD NEW IN.pcap OUT.pcap: copies a classic pcap (Ethernet,
IPv4 or IPv6, TCP), replacing TCP port OLD by NEW in both directions.  Used by
the heuristic-dissector test to move a recorded session off the Veil port;
the TCP checksum is left as is (Wireshark does not check it by default)."""
import struct
import sys


def main():
    old, new, src, dst = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    data = bytearray(open(src, 'rb').read())
    magic = data[:4]
    if magic == b'\xd4\xc3\xb2\xa1' or magic == b'\x4d\x3c\xb2\xa1':
        end = '<'
    elif magic == b'\xa1\xb2\xc3\xd4' or magic == b'\xa1\xb2\x3c\x4d':
        end = '>'
    else:
        sys.exit('not a classic pcap file: ' + src)
    if struct.unpack(end + 'I', data[20:24])[0] != 1:
        sys.exit('link type is not Ethernet: ' + src)
    off = 24
    while off + 16 <= len(data):
        caplen = struct.unpack(end + 'I', data[off + 8:off + 12])[0]
        pkt = off + 16
        off = pkt + caplen
        ethertype = struct.unpack('>H', data[pkt + 12:pkt + 14])[0]
        ip = pkt + 14
        if ethertype == 0x0800 and data[ip + 9] == 6:
            tcp = ip + (data[ip] & 0x0f) * 4
        elif ethertype == 0x86dd and data[ip + 6] == 6:
            tcp = ip + 40
        else:
            continue
        if tcp + 4 > off:
            continue
        for p in (tcp, tcp + 2):
            if struct.unpack('>H', data[p:p + 2])[0] == old:
                data[p:p + 2] = struct.pack('>H', new)
    open(dst, 'wb').write(data)


if __name__ == '__main__':
    main()
