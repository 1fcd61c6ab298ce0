#!/usr/bin/env node
// The lab's DNS resolver, run by each gateway on its LAN address (as an office or home router
// does): `node dns.mjs LISTEN_IP NAME=IPV4 ...`. Answers A queries for the names given,
// NODATA for other types of those names and NXDOMAIN for everything else (nothing is forwarded:
// the lab has no other DNS). Chromium's WebRTC stack resolves STUN/TURN server names through
// DNS itself, not through /etc/hosts, so the lab needs a real resolver.
import dgram from 'node:dgram';

const [listen, ...pairs] = process.argv.slice(2);
const records = new Map(pairs.map((p) => p.split('=')).map(([name, ip]) => [name.toLowerCase().replace(/\.$/, ''), ip]));

function parseName(buf, offset) {
  const labels = [];
  for (;;) {
    const len = buf[offset];
    if (len === undefined) return null;
    if (len === 0) return { name: labels.join('.'), end: offset + 1 };
    if (len >= 0xc0) return null;  // no compression in questions
    labels.push(buf.subarray(offset + 1, offset + 1 + len).toString('latin1'));
    offset += 1 + len;
  }
}

const socket = dgram.createSocket('udp4');
socket.on('message', (query, rinfo) => {
  if (query.length < 12 || (query[2] & 0x80)) return;
  const qd = query.readUInt16BE(4);
  if (qd !== 1) return;
  const q = parseName(query, 12);
  if (!q || q.end + 4 > query.length) return;
  const qtype = query.readUInt16BE(q.end);
  const qclass = query.readUInt16BE(q.end + 2);
  const question = query.subarray(12, q.end + 4);
  const name = q.name.toLowerCase().replace(/\.$/, '');
  const ip = records.get(name);
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);                    // id
  const rd = query[2] & 0x01;
  header[2] = 0x84 | rd;                            // QR, AA, RD copied
  header[3] = ip ? 0x00 : 0x03;                     // NOERROR / NXDOMAIN (RA off)
  header.writeUInt16BE(1, 4);
  const answers = [];
  if (ip && qtype === 1 && qclass === 1) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);                    // pointer to the question's name
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((octet, i) => { rr[12 + i] = Number(octet); });
    answers.push(rr);
  }
  header.writeUInt16BE(answers.length, 6);
  socket.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address);
});
socket.bind(53, listen, () => console.log(`dns on ${listen}:53: ${[...records].map(([n, i]) => `${n}=${i}`).join(' ')}`));
