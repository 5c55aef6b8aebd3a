/*
 * pkt.c - link, IPv4, IPv6 and TCP headers: decoding captured frames and
 * building new ones.
 *
 * Every input byte is read through the checked readers of rd.h: a frame
 * that is cut short or whose lengths disagree is reported as malformed,
 * never read past its captured length.  References: RFC 791 (IPv4),
 * RFC 8200 (IPv6), RFC 9293 (TCP), IEEE 802.1Q (VLAN tags), and the
 * LINKTYPE_* pages of tcpdump.org for the link headers.
 */
#include <stdio.h>
#include <string.h>

#include "capture.h"
#include "rd.h"

int vc_dlt_supported(int dlt)
{
    switch (dlt) {
    case VC_DLT_NULL:
    case VC_DLT_EN10MB:
    case VC_DLT_RAW:
    case VC_DLT_RAW_OB:
    case VC_DLT_LINKTYPE_RAW:
    case VC_DLT_LOOP:
    case VC_DLT_LINUX_SLL:
    case VC_DLT_IPV4:
    case VC_DLT_IPV6:
    case VC_DLT_LINUX_SLL2:
        return 1;
    default:
        return 0;
    }
}

const char *vc_dlt_name(int dlt)
{
    switch (dlt) {
    case VC_DLT_NULL: return "NULL (BSD loopback)";
    case VC_DLT_EN10MB: return "EN10MB (Ethernet)";
    case VC_DLT_RAW:
    case VC_DLT_RAW_OB:
    case VC_DLT_LINKTYPE_RAW: return "RAW (IPv4/IPv6)";
    case VC_DLT_LOOP: return "LOOP (OpenBSD loopback)";
    case VC_DLT_LINUX_SLL: return "LINUX_SLL (Linux cooked v1)";
    case VC_DLT_IPV4: return "IPV4";
    case VC_DLT_IPV6: return "IPV6";
    case VC_DLT_LINUX_SLL2: return "LINUX_SLL2 (Linux cooked v2)";
    default: return "unsupported";
    }
}

void vc_addr_format(const vc_addr *a, uint16_t port, char out[VC_ADDRSTR_LEN])
{
    if (a->family == 4) {
        snprintf(out, VC_ADDRSTR_LEN, "%u.%u.%u.%u:%u", a->a[0], a->a[1], a->a[2], a->a[3],
                 (unsigned)port);
        return;
    }
    /* RFC 5952 text: longest run of zero groups (length >= 2) becomes "::". */
    uint16_t g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (uint16_t)((a->a[2 * i] << 8) | a->a[2 * i + 1]);
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (g[i] != 0) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i > best_len && j - i >= 2) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    char buf[48];
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "::");
            i += best_len - 1;
            continue;
        }
        if (n > 0 && buf[n - 1] != ':')
            n += (size_t)snprintf(buf + n, sizeof buf - n, ":");
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%x", (unsigned)g[i]);
    }
    snprintf(out, VC_ADDRSTR_LEN, "[%s]:%u", buf, (unsigned)port);
}

int vc_addr_equal(const vc_addr *x, const vc_addr *y)
{
    return x->family == y->family && memcmp(x->a, y->a, x->family == 4 ? 4 : 16) == 0;
}

/* ---- decoding ---------------------------------------------------------- */

static vc_pkt_kind bad(vc_pkt *out, const char *why)
{
    out->why = why;
    return VC_PKT_MALFORMED;
}

/* AF_INET6 as written by the various BSDs and Linux in a null/loop header. */
static int af_is_inet6(uint32_t af) { return af == 10 || af == 24 || af == 28 || af == 30; }

/*
 * Link layer: sets *ethertype-like protocol (0x0800, 0x86dd, or 0 for
 * "read the IP version nibble") and the offset of the network header.
 */
static vc_pkt_kind link_header(int dlt, vc_rd *r, uint16_t *proto, vc_pkt *out)
{
    switch (dlt) {
    case VC_DLT_EN10MB: {
        vc_rd_skip(r, 12); /* destination and source MAC */
        uint16_t type = vc_rd_u16(r);
        /* At most two VLAN tags (802.1Q, 802.1ad QinQ): bounded. */
        for (int i = 0; i < 2 && (type == 0x8100 || type == 0x88a8 || type == 0x9100); i++) {
            vc_rd_skip(r, 2);
            type = vc_rd_u16(r);
        }
        if (r->bad)
            return bad(out, "truncated Ethernet header");
        *proto = type;
        return VC_PKT_TCP;
    }
    case VC_DLT_LINUX_SLL:
        vc_rd_skip(r, 14); /* packet type, ARPHRD, address length, address (8) */
        *proto = vc_rd_u16(r);
        return r->bad ? bad(out, "truncated Linux cooked (SLL) header") : VC_PKT_TCP;
    case VC_DLT_LINUX_SLL2:
        *proto = vc_rd_u16(r);
        vc_rd_skip(r, 18); /* reserved, ifindex, ARPHRD, packet type, addr len, addr */
        return r->bad ? bad(out, "truncated Linux cooked (SLL2) header") : VC_PKT_TCP;
    case VC_DLT_NULL: {
        /* Host byte order of the capturing machine: accept both. */
        uint32_t af = vc_rd_u32le(r);
        if (r->bad)
            return bad(out, "truncated null/loopback header");
        uint32_t sw = ((af & 0xff) << 24) | ((af & 0xff00) << 8) | ((af >> 8) & 0xff00) | (af >> 24);
        if (af == 2 || sw == 2)
            *proto = 0x0800;
        else if (af_is_inet6(af) || af_is_inet6(sw))
            *proto = 0x86dd;
        else
            *proto = 1; /* not IP */
        return VC_PKT_TCP;
    }
    case VC_DLT_LOOP: {
        uint32_t af = vc_rd_u32(r);
        if (r->bad)
            return bad(out, "truncated loopback header");
        *proto = af == 2 ? 0x0800 : af_is_inet6(af) ? 0x86dd : 1;
        return VC_PKT_TCP;
    }
    case VC_DLT_RAW:
    case VC_DLT_RAW_OB:
    case VC_DLT_LINKTYPE_RAW:
        *proto = 0;
        return VC_PKT_TCP;
    case VC_DLT_IPV4:
        *proto = 0x0800;
        return VC_PKT_TCP;
    case VC_DLT_IPV6:
        *proto = 0x86dd;
        return VC_PKT_TCP;
    default:
        out->why = "unsupported link type";
        return VC_PKT_BAD_LINK;
    }
}

/* IPv4 header at r (RFC 791).  On VC_PKT_TCP, r is limited to the datagram
 * and positioned on the TCP header. */
static vc_pkt_kind ipv4(vc_rd *r, vc_pkt *out)
{
    size_t start = r->off;
    uint8_t vihl = vc_rd_u8(r);
    vc_rd_skip(r, 1); /* DSCP/ECN */
    uint16_t total = vc_rd_u16(r);
    vc_rd_skip(r, 2); /* identification */
    uint16_t frag = vc_rd_u16(r);
    vc_rd_skip(r, 1); /* TTL */
    uint8_t proto = vc_rd_u8(r);
    vc_rd_skip(r, 2); /* checksum: not verified (offload makes it 0 in captures) */
    const uint8_t *src = vc_rd_ptr(r, 4);
    const uint8_t *dst = vc_rd_ptr(r, 4);
    if (r->bad)
        return bad(out, "truncated IPv4 header");
    if ((vihl >> 4) != 4)
        return bad(out, "IP version is not 4");
    size_t ihl = (size_t)(vihl & 0x0f) * 4;
    if (ihl < 20)
        return bad(out, "IPv4 header length below 20");
    vc_rd_skip(r, ihl - 20); /* options */
    if (r->bad)
        return bad(out, "truncated IPv4 options");
    /* A total length of 0 is what TSO/GSO captures show: take what was captured. */
    size_t avail = r->len - start;
    size_t tlen = total == 0 ? avail : total;
    if (tlen < ihl)
        return bad(out, "IPv4 total length below the header length");
    out->ipver = 4;
    out->ip_hdr_len = ihl;
    out->ip_len = tlen;
    out->src.family = out->dst.family = 4;
    memset(out->src.a, 0, sizeof out->src.a);
    memset(out->dst.a, 0, sizeof out->dst.a);
    memcpy(out->src.a, src, 4);
    memcpy(out->dst.a, dst, 4);
    if ((frag & 0x2000) != 0 || (frag & 0x1fff) != 0)
        return VC_PKT_FRAGMENT;
    if (proto != 6)
        return VC_PKT_OTHER;
    /* Ethernet padding after a short datagram is not payload: limit r. */
    if (start + tlen < r->len)
        r->len = start + tlen;
    return VC_PKT_TCP;
}

/* IPv6 header and extension headers (RFC 8200 §4), bounded to 8 of them. */
static vc_pkt_kind ipv6(vc_rd *r, vc_pkt *out)
{
    size_t start = r->off;
    uint32_t vtf = vc_rd_u32(r);
    uint16_t plen = vc_rd_u16(r);
    uint8_t nh = vc_rd_u8(r);
    vc_rd_skip(r, 1); /* hop limit */
    const uint8_t *src = vc_rd_ptr(r, 16);
    const uint8_t *dst = vc_rd_ptr(r, 16);
    if (r->bad)
        return bad(out, "truncated IPv6 header");
    if ((vtf >> 28) != 6)
        return bad(out, "IP version is not 6");
    out->ipver = 6;
    out->src.family = out->dst.family = 6;
    memcpy(out->src.a, src, 16);
    memcpy(out->dst.a, dst, 16);
    size_t avail = r->len - start;
    out->ip_len = plen == 0 ? avail : 40 + (size_t)plen; /* 0: jumbogram or GSO */
    if (start + out->ip_len < r->len)
        r->len = start + out->ip_len;
    for (int i = 0; i < 8; i++) {
        switch (nh) {
        case 6:
            out->ip_hdr_len = r->off - start;
            if (out->ip_hdr_len > out->ip_len)
                return bad(out, "IPv6 extension headers exceed the payload length");
            return VC_PKT_TCP;
        case 0:  /* hop-by-hop options */
        case 43: /* routing */
        case 60: /* destination options */ {
            uint8_t next = vc_rd_u8(r);
            uint8_t hlen = vc_rd_u8(r);
            vc_rd_skip(r, (size_t)hlen * 8 + 6);
            nh = next;
            break;
        }
        case 51: { /* authentication header: length in 4-octet units minus 2 */
            uint8_t next = vc_rd_u8(r);
            uint8_t hlen = vc_rd_u8(r);
            vc_rd_skip(r, ((size_t)hlen + 2) * 4 - 2);
            nh = next;
            break;
        }
        case 44: { /* fragment */
            uint8_t next = vc_rd_u8(r);
            vc_rd_skip(r, 1);
            uint16_t offm = vc_rd_u16(r);
            vc_rd_skip(r, 4);
            if (r->bad)
                return bad(out, "truncated IPv6 fragment header");
            if ((offm & 0xfff9) != 0) /* offset or M set: a real fragment */
                return VC_PKT_FRAGMENT;
            nh = next; /* atomic fragment: carries a whole datagram */
            break;
        }
        default:
            return r->bad ? bad(out, "truncated IPv6 extension header") : VC_PKT_OTHER;
        }
        if (r->bad)
            return bad(out, "truncated IPv6 extension header");
    }
    return bad(out, "more than 8 IPv6 extension headers");
}

vc_pkt_kind vc_pkt_parse(int dlt, const uint8_t *frame, size_t caplen, vc_pkt *out)
{
    vc_rd r;
    memset(out, 0, sizeof *out);
    out->dlt = dlt;
    vc_rd_init(&r, frame, caplen);
    uint16_t proto = 0;
    vc_pkt_kind k = link_header(dlt, &r, &proto, out);
    if (k != VC_PKT_TCP)
        return k;
    out->l3_off = r.off;
    if (proto == 0) { /* raw IP: the version nibble decides */
        if (!vc_rd_have(&r, 1))
            return bad(out, "empty raw IP packet");
        proto = (r.p[r.off] >> 4) == 6 ? 0x86dd : 0x0800;
    }
    if (proto == 0x0800)
        k = ipv4(&r, out);
    else if (proto == 0x86dd)
        k = ipv6(&r, out);
    else
        return VC_PKT_OTHER;
    if (k != VC_PKT_TCP)
        return k;

    /* TCP header (RFC 9293 §3.1). */
    size_t tcp_start = r.off;
    out->tcp_off = tcp_start;
    out->sport = vc_rd_u16(&r);
    out->dport = vc_rd_u16(&r);
    out->seq = vc_rd_u32(&r);
    out->ack = vc_rd_u32(&r);
    uint8_t off = vc_rd_u8(&r);
    out->flags = vc_rd_u8(&r);
    out->window = vc_rd_u16(&r);
    vc_rd_skip(&r, 4); /* checksum (not verified: offload), urgent pointer */
    if (r.bad)
        return bad(out, "truncated TCP header");
    size_t thl = (size_t)(off >> 4) * 4;
    if (thl < 20)
        return bad(out, "TCP header length below 20");
    vc_rd_skip(&r, thl - 20);
    if (r.bad)
        return bad(out, "truncated TCP options");
    out->tcp_hdr_len = thl;
    size_t ip_payload = out->ip_len - out->ip_hdr_len;
    if (thl > ip_payload)
        return bad(out, "TCP header longer than the IP payload");
    out->payload_wire = ip_payload - thl;
    out->payload = r.p + r.off;
    out->payload_len = vc_rd_left(&r);
    if (out->payload_len > out->payload_wire)
        out->payload_len = out->payload_wire;
    return VC_PKT_TCP;
}

/* ---- building ---------------------------------------------------------- */

static uint32_t sum16(uint32_t acc, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += (uint32_t)((p[i] << 8) | p[i + 1]);
    if (n & 1)
        acc += (uint32_t)(p[n - 1] << 8);
    return acc;
}

static uint16_t fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

size_t vc_frame_build(const vc_frame_spec *s, uint8_t *out, size_t cap)
{
    size_t iphl = s->ip_hdr != NULL ? s->ip_hdr_len : (s->ipver == 4 ? 20 : 40);
    size_t thl = s->tcp_hdr != NULL ? s->tcp_hdr_len : 20;
    size_t tcp_len = thl + s->payload_len;
    size_t total = s->l2_len + iphl + tcp_len;
    if (total > cap || iphl + tcp_len > 65535 || thl < 20 || thl > 60 ||
        (s->ipver == 4 && iphl < 20) || (s->ipver == 6 && iphl < 40))
        return 0;
    uint8_t *p = out;
    if (s->l2_len > 0)
        memcpy(p, s->l2, s->l2_len);
    p += s->l2_len;

    uint8_t *ip = p;
    if (s->ip_hdr != NULL)
        memcpy(ip, s->ip_hdr, iphl);
    if (s->ipver == 4) {
        if (s->ip_hdr == NULL) {
            memset(ip, 0, 20);
            ip[0] = 0x45;
            vc_put16(ip + 4, s->ip_id);
            vc_put16(ip + 6, 0x4000); /* DF */
            ip[8] = 64;
            ip[9] = 6;
            memcpy(ip + 12, s->src->a, 4);
            memcpy(ip + 16, s->dst->a, 4);
        }
        vc_put16(ip + 2, (uint16_t)(iphl + tcp_len));
        vc_put16(ip + 10, 0);
        vc_put16(ip + 10, fold(sum16(0, ip, iphl)));
    } else {
        if (s->ip_hdr == NULL) {
            memset(ip, 0, 40);
            ip[0] = 0x60;
            ip[6] = 6;
            ip[7] = 64;
            memcpy(ip + 8, s->src->a, 16);
            memcpy(ip + 24, s->dst->a, 16);
        }
        vc_put16(ip + 4, (uint16_t)(iphl - 40 + tcp_len));
    }
    p += iphl;

    uint8_t *t = p;
    if (s->tcp_hdr != NULL) {
        memcpy(t, s->tcp_hdr, thl);
    } else {
        memset(t, 0, 20);
        t[12] = 5 << 4;
    }
    vc_put16(t + 0, s->sport);
    vc_put16(t + 2, s->dport);
    vc_put32(t + 4, s->seq);
    vc_put32(t + 8, s->ack);
    t[13] = s->flags;
    vc_put16(t + 14, s->window);
    vc_put16(t + 16, 0);
    if (s->payload_len > 0)
        memcpy(t + thl, s->payload, s->payload_len);
    /* Pseudo-header: RFC 9293 §3.1 (IPv4), RFC 8200 §8.1 (IPv6). */
    uint32_t acc = 0;
    uint8_t ph[40];
    if (s->ipver == 4) {
        memcpy(ph, s->src->a, 4);
        memcpy(ph + 4, s->dst->a, 4);
        ph[8] = 0;
        ph[9] = 6;
        vc_put16(ph + 10, (uint16_t)tcp_len);
        acc = sum16(acc, ph, 12);
    } else {
        memcpy(ph, s->src->a, 16);
        memcpy(ph + 16, s->dst->a, 16);
        vc_put32(ph + 32, (uint32_t)tcp_len);
        ph[36] = ph[37] = ph[38] = 0;
        ph[39] = 6;
        acc = sum16(acc, ph, 40);
    }
    acc = sum16(acc, t, tcp_len);
    uint16_t ck = fold(acc);
    vc_put16(t + 16, ck);
    return total;
}
