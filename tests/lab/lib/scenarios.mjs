// The seven corporate-network scenarios: the corporate gateway's filter (nftables, forward
// chain; NAT is always on), the proxy that is the way out (if any), what the test expects, and
// the probes that show the network really behaves as described before any browser starts.
//
// expect: 'connect' = video both ways is required; 'connect-or-reason' = either video both ways
// or the customer's page shows a specific reason (status banner with data-reason) in time;
// 'reason' = the call cannot work here and the customer must be shown one of `reasons`.
// customerRelay: the transports the customer's selected local candidate may use when it
// connects ('host'/'srflx'/'prflx' = direct, 'relay/udp', 'relay/tcp', 'relay/tls').
import { NET } from './topology.mjs';

// Replies to connections the LAN opened are always let back in.
const REPLIES = 'ct direction reply accept';

// Scenario 7: only HTTP(S) out. On 443 the first data segment of a connection must be a TLS
// record (content type 0x16, handshake); a connection whose first data is anything else is
// dropped from then on. Segments without payload (handshake, ACKs, FIN/RST) pass: the
// `@ih,0,8` match reads the first payload byte and fails on a segment without one.
const HTTPS_ONLY = `${REPLIES}
iifname "lan" tcp dport 80 accept
iifname "lan" tcp dport 443 ct mark 0x2 counter drop
iifname "lan" tcp dport 443 ct mark 0x1 accept
iifname "lan" tcp dport 443 @ih,0,8 0x16 ct mark set 0x1 counter accept
iifname "lan" tcp dport 443 @ih,0,8 != 0x16 ct mark set 0x2 counter drop
iifname "lan" tcp dport 443 accept`;

const proxyUrl = `http://${NET.corpGwLan}:${NET.proxyPort}`;
const site = `https://${NET.host}/healthz`;

export const SCENARIOS = {
  1: {
    test: 'lab_1_open_nat',
    title: 'Open networks, NAT on both sides',
    network: 'corporate and home networks behind NAT, nothing filtered',
    forward: '',
    policy: 'accept',
    proxy: null,
    expect: 'connect',
    customerRelay: ['host', 'srflx', 'prflx'],
    probes: [
      ['corp', 'stun-udp', NET.host, 3478, true],
      ['corp', 'stun-tcp', NET.host, 3478, true],
      ['corp', 'tls', NET.host, 5349, true],
      ['corp', 'tls', NET.host, 443, true],
      // What a server answers to bytes that are not TLS on 443 (scenario 7 compares).
      ['corp', 'plain', NET.host, 443, true],
    ],
  },
  2: {
    test: 'lab_2_udp_blocked',
    title: 'UDP blocked at the corporate gateway',
    network: 'every UDP packet out of the corporate LAN dropped; TCP open',
    forward: 'iifname "lan" meta l4proto udp counter drop',
    policy: 'accept',
    proxy: null,
    expect: 'connect',
    customerRelay: ['relay/tcp', 'relay/tls'],
    probes: [
      ['corp', 'stun-udp', NET.host, 3478, false],
      ['corp', 'stun-tcp', NET.host, 3478, true],
      ['corp', 'tls', NET.host, 5349, true],
      ['corp', 'tls', NET.host, 443, true],
    ],
  },
  3: {
    test: 'lab_3_tcp443_only',
    title: 'Only TCP 443 allowed out (direct)',
    network: 'forward policy drop; only TCP to port 443 leaves the corporate LAN',
    forward: `${REPLIES}\niifname "lan" tcp dport 443 accept`,
    policy: 'drop',
    proxy: null,
    expect: 'connect',
    customerRelay: ['relay/tls'],
    probes: [
      ['corp', 'stun-udp', NET.host, 3478, false],
      ['corp', 'stun-tcp', NET.host, 3478, false],
      ['corp', 'tls', NET.host, 5349, false],
      ['corp', 'tcp', NET.host, 80, false],
      ['corp', 'tls', NET.host, 443, true],
    ],
  },
  4: {
    test: 'lab_4_proxy_connect443',
    title: 'No route out except an HTTP proxy (squid, CONNECT to 443 only)',
    network: 'nothing forwarded out of the corporate LAN; squid on the gateway allows CONNECT to port 443 only',
    forward: REPLIES,
    policy: 'drop',
    proxy: { kind: 'squid', auth: false },
    expect: 'connect',
    customerRelay: ['relay/tls'],
    probes: [
      ['corp', 'stun-udp', NET.host, 3478, false],
      ['corp', 'tls', NET.host, 443, false],
      ['corp', 'https', site, proxyUrl, true, /issued by parley\.lab/],
      ['corp', 'https', `https://${NET.host}:5349/`, proxyUrl, false],
    ],
  },
  5: {
    test: 'lab_5_proxy_auth',
    title: 'The same proxy demanding Basic authentication',
    network: 'as 4, and squid answers 407 until the client sends Basic credentials',
    forward: REPLIES,
    policy: 'drop',
    proxy: { kind: 'squid', auth: true },
    expect: 'connect-or-reason',
    reasons: ['proxy-auth', 'media-blocked'],
    customerRelay: ['relay/tls'],
    probes: [
      ['corp', 'tls', NET.host, 443, false],
      ['corp', 'https', site, proxyUrl, false],
    ],
  },
  6: {
    test: 'lab_6_tls_inspection',
    title: 'TLS-intercepting proxy (mitmproxy, its CA trusted by the client)',
    network: 'nothing forwarded; mitmproxy on the gateway decrypts and re-encrypts every CONNECT',
    forward: REPLIES,
    policy: 'drop',
    proxy: { kind: 'mitmproxy' },
    expect: 'connect-or-reason',
    reasons: ['tls-inspection', 'media-blocked'],
    customerRelay: ['relay/tls'],
    probes: [
      ['corp', 'tls', NET.host, 443, false],
      // The certificate the client sees is forged by the inspection CA, not the server's.
      ['corp', 'https', site, proxyUrl, true, /issued by Lab Corp IT/],
      ['corp', 'https', `https://${NET.host}:5349/`, proxyUrl, false],
    ],
  },
  // Not in the list: the variant of 6 where interception does break TURN-TLS, so the
  // failure path (the reason the customer is shown) runs for real in every lab run.
  8: {
    test: 'lab_8_tls_inspection_http_only',
    title: 'TLS-intercepting proxy that passes only HTTP (variant of 6)',
    network: 'as 6, but mitmproxy treats whatever is inside TLS as HTTP (rawtcp off), as inspecting proxies that only pass web requests do',
    forward: REPLIES,
    policy: 'drop',
    proxy: { kind: 'mitmproxy', rawtcp: false },
    expect: 'reason',
    reasons: ['media-filtered'],
    customerRelay: [],
    probes: [
      ['corp', 'tls', NET.host, 443, false],
      ['corp', 'https', site, proxyUrl, true, /issued by Lab Corp IT/],
    ],
  },
  7: {
    test: 'lab_7_https_only',
    title: 'Only HTTP(S) through; anything on 443 that is not TLS dropped',
    network: 'forward policy drop; TCP 80 and 443 only; on 443 a connection whose first data is not a TLS record is dropped',
    forward: HTTPS_ONLY,
    policy: 'drop',
    proxy: null,
    expect: 'connect',
    customerRelay: ['relay/tls'],
    probes: [
      ['corp', 'stun-udp', NET.host, 3478, false],
      ['corp', 'stun-tcp', NET.host, 3478, false],
      ['corp', 'tls', NET.host, 5349, false],
      ['corp', 'tcp', NET.host, 80, true],
      ['corp', 'tls', NET.host, 443, true],
      // The rule bites: the same non-TLS bytes that the server answers from home (and in
      // scenario 1) get no reaction from the corporate LAN.
      ['home', 'plain', NET.host, 443, true],
      ['corp', 'plain', NET.host, 443, false],
    ],
  },
};

export function scenarioByNumber(n) {
  const s = SCENARIOS[n];
  if (!s) throw new Error(`no scenario ${n} (${Object.keys(SCENARIOS).join(', ')})`);
  return { number: Number(n), ...s };
}
