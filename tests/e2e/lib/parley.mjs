// Starts a real `parley serve` on loopback in a temporary data directory (every port 0) and
// drives the `parley admin` commands, per the server's command-line contract.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function parleyBinary() {
  const bin = process.env.PARLEY_BIN;
  if (!bin) throw new Error('PARLEY_BIN is not set (the ctest registration sets it to the parley binary)');
  if (!fs.existsSync(bin)) throw new Error(`PARLEY_BIN ${bin} does not exist: build the parley target first`);
  return bin;
}

function run(bin, args, { input = null, timeoutMs = 20_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(bin)} ${args.join(' ')} timed out`));
    }, timeoutMs);
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${path.basename(bin)} ${args[0]} ${args[1] || ''} exited ${code}: ${stderr.trim() || stdout.trim()}`));
    });
    if (input !== null) child.stdin.end(input);
    else child.stdin.end();
  });
}

export class ParleyServer {
  constructor({ bin, outDir, extraArgs = [] }) {
    this.bin = bin;
    this.outDir = outDir;
    this.extraArgs = extraArgs;
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-e2e-'));
    this.logPath = path.join(outDir, 'parley.log');
    this.log = '';
    this.child = null;
    this.origin = null;
    this.ports = {};
  }

  // Resolves once the server logged "ready at https://localhost:PORT/".
  start({ timeoutMs = 30_000 } = {}) {
    const args = ['serve', '--data-dir', this.dataDir, '--https-port', '0', '--http-port', '0',
      '--stun-port', '0', '--tls-port', '0',
      // Several browser contexts hit one IP hard (assets, stats polling, reconnects).
      '--set', 'web.requests_per_second_per_ip=0',
      ...this.extraArgs];
    this.commandLine = `${this.bin} ${args.join(' ')}`;
    const logFile = fs.createWriteStream(this.logPath);
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
          const listening = /listening on (\S+) 127\.0\.0\.1:(\d+)/.exec(line);
          if (listening) this.ports[listening[1]] = Number(listening[2]);
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

  tail(lines = 40) {
    return this.log.split('\n').slice(-lines).join('\n');
  }

  createAdvisor(username, password, displayName) {
    return run(this.bin, ['admin', 'create-advisor', username, '--data-dir', this.dataDir,
      '--password-stdin', '--display-name', displayName], { input: `${password}\n` });
  }

  // SIGTERM (graceful), SIGKILL after a grace period. Resolves with the exit code.
  async stop({ graceMs = 10_000 } = {}) {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return this.exitCode;
    const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  removeDataDir() {
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}
