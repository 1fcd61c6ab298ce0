#!/usr/bin/env node
// Network probes run inside a lab namespace (`ip netns exec NS node probe.mjs ...`), so a test
// can show what a host's network lets through. Prints one JSON line: {ok, ms, detail}.
//
//   probe.mjs tcp HOST PORT            TCP connect
//   probe.mjs stun-udp HOST PORT       STUN Binding over UDP: ok when answered
//   probe.mjs stun-tcp HOST PORT       STUN Binding over plain TCP: ok when answered
//   probe.mjs tls HOST PORT            TLS handshake (any certificate): ok when it completes
//   probe.mjs plain HOST PORT          connect, send plain bytes that are not TLS and report
//                                      whether the server reacted (data, close or reset)
//                                      within the timeout: ok = it reacted
//   probe.mjs https URL [PROXY]        GET through an optional http://proxy:port (CONNECT)
// Every probe gives up after PROBE_TIMEOUT_MS (default 3000).
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';

const TIMEOUT = Number(process.env.PROBE_TIMEOUT_MS || 3000);
const [kind, a, b, c] = process.argv.slice(2);
const began = Date.now();

function done(ok, detail) {
  process.stdout.write(`${JSON.stringify({ ok, ms: Date.now() - began, detail })}\n`);
  process.exit(0);
}
setTimeout(() => done(false, `no answer within ${TIMEOUT} ms`), TIMEOUT).unref();

function bindingRequest() {
  const msg = Buffer.alloc(20);
  msg.writeUInt16BE(0x0001, 0);
  msg.writeUInt16BE(0, 2);
  msg.writeUInt32BE(0x2112a442, 4);
  crypto.randomBytes(12).copy(msg, 8);
  return msg;
}

function isBindingSuccess(buf) {
  return buf.length >= 20 && buf.readUInt16BE(0) === 0x0101 && buf.readUInt32BE(4) === 0x2112a442;
}

const port = Number(b);
switch (kind) {
  case 'tcp': {
    const s = net.connect({ host: a, port }, () => { s.destroy(); done(true, 'connected'); });
    s.on('error', (err) => done(false, err.code || err.message));
    break;
  }
  case 'stun-udp': {
    const s = dgram.createSocket('udp4');
    s.on('message', (m) => done(isBindingSuccess(m), isBindingSuccess(m) ? 'binding success' : 'unexpected answer'));
    s.on('error', (err) => done(false, err.code || err.message));
    const req = bindingRequest();
    s.send(req, port, a);
    setTimeout(() => s.send(req, port, a), 500).unref();
    setTimeout(() => s.send(req, port, a), 1500).unref();
    break;
  }
  case 'stun-tcp': {
    const s = net.connect({ host: a, port }, () => s.write(bindingRequest()));
    s.on('data', (m) => done(isBindingSuccess(m), isBindingSuccess(m) ? 'binding success' : `answer ${m.subarray(0, 8).toString('hex')}`));
    s.on('error', (err) => done(false, err.code || err.message));
    s.on('close', () => done(false, 'closed without an answer'));
    break;
  }
  case 'tls': {
    const s = tls.connect({ host: a, port, servername: c || a, rejectUnauthorized: false }, () => {
      const cert = s.getPeerCertificate();
      const issuer = cert && cert.issuer ? (cert.issuer.O || cert.issuer.CN || '') : '';
      const protocol = s.getProtocol();
      s.destroy();
      done(true, `handshake done (${protocol}, certificate issued by ${issuer})`);
    });
    s.on('error', (err) => done(false, err.code || err.message));
    break;
  }
  case 'plain': {
    const s = net.connect({ host: a, port }, () => s.write(bindingRequest()));
    s.on('data', (m) => done(true, `answered ${m.length} bytes (${m.subarray(0, 4).toString('hex')})`));
    s.on('error', (err) => done(err.code === 'ECONNRESET', err.code || err.message));
    s.on('end', () => done(true, 'server closed the connection'));
    break;
  }
  case 'https': {
    const url = new URL(a);
    const proxy = b ? new URL(b) : null;
    const handshake = (socket) => {
      let issuer = '';
      const s = tls.connect({ socket, servername: url.hostname, rejectUnauthorized: false }, () => {
        const cert = s.getPeerCertificate();
        issuer = cert && cert.issuer ? (cert.issuer.O || cert.issuer.CN || '') : '';
        s.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
      });
      let text = '';
      s.on('data', (d) => { text += d; });
      s.on('end', () => done(/^HTTP\/1\.1 [23]/.test(text), `${text.split('\r\n')[0]}, certificate issued by ${issuer}`));
      s.on('error', (err) => done(false, err.code || err.message));
    };
    if (!proxy) {
      const s = net.connect({ host: url.hostname, port: Number(url.port || 443) }, () => handshake(s));
      s.on('error', (err) => done(false, err.code || err.message));
    } else {
      const s = net.connect({ host: proxy.hostname, port: Number(proxy.port) }, () => {
        s.write(`CONNECT ${url.hostname}:${url.port || 443} HTTP/1.1\r\nHost: ${url.hostname}:${url.port || 443}\r\n\r\n`);
      });
      let head = '';
      const onData = (d) => {
        head += d;
        if (!head.includes('\r\n\r\n')) return;
        s.off('data', onData);
        const status = head.split('\r\n')[0];
        if (!/^HTTP\/1\.[01] 200/.test(status)) done(false, `proxy: ${status}`);
        else handshake(s);
      };
      s.on('data', onData);
      s.on('error', (err) => done(false, err.code || err.message));
    }
    break;
  }
  default:
    done(false, `unknown probe ${kind}`);
}
