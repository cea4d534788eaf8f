/**
 * The raw-segment helpers S1-13 crafts its RST with: checksum (RFC 1071 over the IPv4 pseudo
 * header), header layout, and parsing what a raw IPPROTO_TCP socket reads.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  buildTcpSegment,
  parseIpv4Tcp,
  tcpChecksum,
  TCP_RST,
  TCP_ACK,
  TCP_FIN,
} from '../../src/sockets/raw.js';

function ipv4Packet(src: string, dst: string, tcp: Buffer): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + tcp.length, 2);
  ip[8] = 64;
  ip[9] = 6;
  Buffer.from(src.split('.').map(Number)).copy(ip, 12);
  Buffer.from(dst.split('.').map(Number)).copy(ip, 16);
  return Buffer.concat([ip, tcp]);
}

describe('raw TCP segments', () => {
  it('a built segment checksums to zero when verified (RFC 1071)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 1, max: 65535 }),
        fc.nat(0xffffffff),
        (sp, dp, seq) => {
          const seg = buildTcpSegment({
            src: '198.51.100.2',
            dst: '198.51.100.1',
            sport: sp,
            dport: dp,
            seq,
            ack: 0,
            flags: TCP_RST,
            window: 0,
          });
          // Summing the segment with its checksum in place gives 0xffff, i.e. a complement of 0.
          expect(tcpChecksum('198.51.100.2', '198.51.100.1', seg)).toBe(0);
        },
      ),
    );
  });

  it('matches a checksum computed by hand for a known header', () => {
    // 127.0.0.1:5131 -> 127.0.0.1:40000, seq 1, RST: pseudo header + header words summed by hand.
    const seg = buildTcpSegment({
      src: '127.0.0.1',
      dst: '127.0.0.1',
      sport: 5131,
      dport: 40000,
      seq: 1,
      ack: 0,
      flags: TCP_RST,
      window: 0,
    });
    const words = [0x7f00, 0x0001, 0x7f00, 0x0001, 0x0006, 20, 5131, 40000, 0, 1, 0, 0, 0x5004, 0, 0, 0];
    let sum = words.reduce((a, b) => a + b, 0);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(seg.readUInt16BE(16)).toBe(~sum & 0xffff);
    expect(seg.length).toBe(20);
    expect(seg[12]).toBe(0x50);
  });

  it('parses what it builds, inside an IPv4 packet, with the payload length', () => {
    const hdr = buildTcpSegment({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      sport: 1,
      dport: 2,
      seq: 0xfffffffe,
      ack: 7,
      flags: TCP_FIN | TCP_ACK,
      window: 512,
    });
    const pkt = ipv4Packet('10.0.0.1', '10.0.0.2', Buffer.concat([hdr, Buffer.from('abc')]));
    expect(parseIpv4Tcp(pkt)).toEqual({
      src: '10.0.0.1',
      dst: '10.0.0.2',
      sport: 1,
      dport: 2,
      seq: 0xfffffffe,
      ack: 7,
      flags: TCP_FIN | TCP_ACK,
      window: 512,
      payloadLength: 3,
    });
  });

  it('rejects what is not IPv4 TCP', () => {
    expect(parseIpv4Tcp(Buffer.alloc(10))).toBeNull();
    const udp = ipv4Packet('10.0.0.1', '10.0.0.2', Buffer.alloc(20));
    udp[9] = 17;
    expect(parseIpv4Tcp(udp)).toBeNull();
    const v6 = ipv4Packet('10.0.0.1', '10.0.0.2', Buffer.alloc(20));
    v6[0] = 0x60;
    expect(parseIpv4Tcp(v6)).toBeNull();
  });
});
