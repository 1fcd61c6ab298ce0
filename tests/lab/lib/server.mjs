// `parley serve` on the lab's `server` host with its production ports (80, 443, 3478, 5349)
// and a certificate for parley.lab made here (so the browsers can trust exactly this key with
// --ignore-certificate-errors-spki-list, as they would trust a real CA-issued certificate).
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ParleyServer } from '../../e2e/lib/parley.mjs';
import { NET } from './topology.mjs';

// A self-signed certificate (or, with `ca`, a CA certificate) for `name`: {certFile, keyFile,
// pem (key + cert), spki (base64 SHA-256 of the public key, Chromium's SPKI hash)}.
export function makeCertificate(dir, name, { ca = false } = {}) {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.crt`);
  const ext = ca
    ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']
    : ['-addext', `subjectAltName=DNS:${name}`, '-addext', 'extendedKeyUsage=serverAuth'];
  const subject = ca ? `/O=Lab Corp IT/CN=Lab Corp TLS inspection CA` : `/CN=${name}`;
  const result = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile,
    '-out', certFile, '-days', '3', '-subj', subject, ...ext], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl req failed: ${result.stderr}`);
  const certPem = fs.readFileSync(certFile, 'utf8');
  const der = new crypto.X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return {
    certFile,
    keyFile,
    pem: fs.readFileSync(keyFile, 'utf8') + certPem,
    spki: crypto.createHash('sha256').update(der).digest('base64'),
  };
}

export class LabParley extends ParleyServer {
  constructor({ bin, outDir, topology, cert }) {
    super({ bin, outDir });
    this.topology = topology;
    this.cert = cert;
    this.listening = [];
  }

  start({ timeoutMs = 30_000 } = {}) {
    const args = ['serve', '--data-dir', this.dataDir,
      '--listen', NET.serverIp,
      '--set', `web.listen=["${NET.serverIp}"]`,
      '--public-url', `https://${NET.host}`,
      '--relay-address', NET.serverIp,
      '--set', `tls.cert_file="${this.cert.certFile}"`,
      '--set', `tls.key_file="${this.cert.keyFile}"`,
      // Two browsers, stats polling: do not rate-limit them.
      '--set', 'web.requests_per_second_per_ip=0',
      ...this.extraArgs];
    const argv = this.topology.wrap('server', [this.bin, ...args]);
    this.commandLine = argv.join(' ');
    const logFile = fs.createWriteStream(this.logPath);
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      let buffered = '';
      const timer = setTimeout(() => {
        reject(new Error(`parley serve did not log "ready at" within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const onData = (chunk) => {
        const text = chunk.toString();
        this.log += text;
        logFile.write(text);
        buffered += text;
        let newline;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          const listening = /listening on (\S+) (\S+)/.exec(line);
          if (listening) this.listening.push(`${listening[1]} ${listening[2]}`);
          const ready = /ready at (https:\/\/[^\s/]+)\/?/.exec(line);
          if (ready && !this.origin) {
            this.origin = ready[1];
            clearTimeout(timer);
            resolve(this);
          }
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', (err) => { clearTimeout(timer); reject(err); });
      child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        logFile.end();
        if (!this.origin) {
          clearTimeout(timer);
          reject(new Error(`parley serve exited (${code ?? signal}) before it was ready:\n${this.tail()}`));
        }
      });
    });
  }

  // Synchronous last resort for the process-exit clean-up.
  killNow() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      try { this.child.kill('SIGKILL'); } catch { /* gone */ }
    }
  }
}
