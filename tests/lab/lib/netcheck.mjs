// `parley netcheck --json` run on a lab host (inside its namespace, as an IT admin would run it
// on a machine of the corporate network), and what its report says compared with what the
// scenario implies (the `netcheck` block of lib/scenarios.mjs). Also the comparison of the
// /check page's report with netcheck's (lib/checkpage.mjs gets the page's report).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

// docs/netcheck.md: exit 0 grade best, 1 works or reduced, 2 blocked, 3 usage error.
export const EXIT_FOR_GRADE = { best: 0, works: 1, reduced: 1, blocked: 2 };
// Bandwidth planning per video stream, each way (docs/netcheck.md, `streams`).
export const STREAM_KBPS = 1000;

// The proxy variables a client honours; the lab's own environment must not leak into the run.
const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy',
  'NO_PROXY', 'no_proxy'];

// A check of a report by id ({id, verdict, failure, details, ...}), or null. The schema lists
// the checks as an array; an object keyed by id is read too.
export function checkOf(report, id) {
  const checks = report && report.checks;
  if (Array.isArray(checks)) return checks.find((c) => c && c.id === id) || null;
  if (checks && typeof checks === 'object' && checks[id]) return { id, ...checks[id] };
  return null;
}

function allChecks(report) {
  const checks = report && report.checks;
  if (Array.isArray(checks)) return checks;
  if (checks && typeof checks === 'object') return Object.entries(checks).map(([id, c]) => ({ id, ...c }));
  return [];
}

// The measured rate and stream count of a bandwidth check: {kbps, streams} (nulls when absent).
export function bandwidthOf(check) {
  const d = (check && check.details) || {};
  const number = (...values) => values.find((v) => typeof v === 'number' && Number.isFinite(v)) ?? null;
  return { kbps: number(d.kbps, d.receivedKbps, check && check.kbps), streams: number(d.streams, check && check.streams) };
}

function remediesOf(report) {
  const r = report && (report.remedies || (report.assessment && report.assessment.remedies));
  return Array.isArray(r) ? r.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))) : [];
}

// "pass", or "fail (timeout)": one check's verdict for people and result.json.
function verdictText(check) {
  if (!check) return 'missing';
  return check.failure ? `${check.verdict} (${check.failure})` : String(check.verdict);
}

// What result.json keeps of a run: grade, exit status, every verdict (with its failure code),
// the remedies, the bandwidth measured.
export function summarize(run) {
  const report = run.report || {};
  const verdicts = {};
  for (const c of allChecks(report)) verdicts[c.id] = verdictText(c);
  return {
    label: run.label,
    command: run.command,
    exitCode: run.exitCode,
    ms: run.ms,
    grade: report.grade ?? null,
    headline: report.headline ?? (report.assessment && report.assessment.headline) ?? null,
    verdicts,
    remedies: remediesOf(report),
    bandwidthUp: bandwidthOf(checkOf(report, 'bandwidth_up')),
    bandwidthDown: bandwidthOf(checkOf(report, 'bandwidth_down')),
    pathQuality: (checkOf(report, 'path_quality') || {}).details || null,
    tls443: (checkOf(report, 'tls_443') || {}).details || null,
    files: run.files,
  };
}

// Runs `parley netcheck --json URL` inside `role`'s namespace. proxy: the HTTPS_PROXY value (as
// the corporate machine has it configured) or null; proxyUser: "user:password" for
// --proxy-user. Saves stdout (the JSON) and stderr to OUTDIR/netcheck-LABEL.{json,stderr}.
// Resolves {label, command, exitCode, ms, report, stdout, stderr, files}; rejects only when the
// process could not run or its stdout is not one JSON document.
export function runNetcheck(topology, role, { bin, url, outDir, label, proxy = null, proxyUser = null,
  timeoutMs = 90_000 }) {
  const env = { ...process.env };
  for (const name of PROXY_VARIABLES) delete env[name];
  if (proxy) env.HTTPS_PROXY = proxy;
  const args = ['netcheck', '--json', url];
  if (proxyUser) args.push('--proxy-user', proxyUser);
  const argv = topology.wrap(role, [bin, ...args]);
  // For people: the command as run on the host, with the password hidden.
  const shown = `${proxy ? `HTTPS_PROXY=${proxy} ` : ''}parley ${args.join(' ')}`
    .replace(/(--proxy-user \S+?:)\S+/, '$1***');
  const began = Date.now();
  return new Promise((resolve, reject) => {
    execFile(argv[0], argv.slice(1), { encoding: 'utf8', env, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const ms = Date.now() - began;
        const files = { json: `netcheck-${label}.json`, stderr: `netcheck-${label}.stderr` };
        fs.writeFileSync(path.join(outDir, files.json), stdout || '');
        fs.writeFileSync(path.join(outDir, files.stderr), stderr || '');
        if (err && typeof err.code !== 'number') {
          reject(new Error(`${shown}: ${err.killed ? `killed after ${timeoutMs} ms` : err.message}\n${(stderr || '').slice(-2000)}`));
          return;
        }
        const exitCode = err ? err.code : 0;
        let report;
        try {
          report = JSON.parse(stdout);
        } catch (parseError) {
          reject(new Error(`${shown} exited ${exitCode} without one JSON document on stdout `
            + `(${parseError.message}): ${stdout.slice(0, 300)}\nstderr: ${(stderr || '').slice(-1500)}`));
          return;
        }
        resolve({ label, command: shown, exitCode, ms, report, stdout, stderr, files });
      });
  });
}

const matches = (want, got) => (Array.isArray(want) ? want.includes(got) : want === got);

// What is wrong with a run, measured against an expectation (a `netcheck.runs[]` entry of
// lib/scenarios.mjs); [] when it says what the scenario implies:
//   grade: 'works' or ['works', 'reduced']; the exit status must be the grade's in any case;
//   verdicts: {id: 'pass' | ['fail', 'warn'] ...};
//   failures: {id: 'intercepted' ...} (the check's failure code);
//   anyFailure: a failure code some check must carry (e.g. proxy_auth_required);
//   remedies: [RegExp]: each must match at least one remedy;
//   details: {id: {field: RegExp}} (a details field as text);
//   custom: (report) => [problems].
export function problemsOf(run, expect) {
  const problems = [];
  const report = run.report || {};
  const grade = report.grade;
  if (!(grade in EXIT_FOR_GRADE)) problems.push(`grade is ${JSON.stringify(grade)}, not one of ${Object.keys(EXIT_FOR_GRADE).join(', ')}`);
  else if (run.exitCode !== EXIT_FOR_GRADE[grade]) problems.push(`exit status ${run.exitCode} for grade ${grade} (expected ${EXIT_FOR_GRADE[grade]})`);
  if (expect.grade && !matches(expect.grade, grade)) problems.push(`grade ${grade}, expected ${[].concat(expect.grade).join(' or ')}`);
  for (const [id, want] of Object.entries(expect.verdicts || {})) {
    const c = checkOf(report, id);
    if (!c) problems.push(`${id}: missing from the report`);
    else if (!matches(want, c.verdict)) problems.push(`${id}: ${verdictText(c)}, expected ${[].concat(want).join(' or ')}${c.summary ? ` — ${c.summary}` : ''}`);
  }
  for (const [id, code] of Object.entries(expect.failures || {})) {
    const c = checkOf(report, id);
    if (!c || c.failure !== code) problems.push(`${id}: failure ${c ? JSON.stringify(c.failure) : 'missing'}, expected ${code}`);
  }
  if (expect.anyFailure && !allChecks(report).some((c) => c.failure === expect.anyFailure)) {
    problems.push(`no check failed with ${expect.anyFailure} (${allChecks(report).filter((c) => c.failure).map((c) => `${c.id}: ${c.failure}`).join(', ')})`);
  }
  const remedies = remediesOf(report);
  for (const re of expect.remedies || []) {
    if (!remedies.some((r) => re.test(r))) problems.push(`no remedy matches ${re}: ${JSON.stringify(remedies)}`);
  }
  for (const [id, fields] of Object.entries(expect.details || {})) {
    const d = (checkOf(report, id) || {}).details || {};
    for (const [field, re] of Object.entries(fields)) {
      if (!re.test(String(d[field] ?? ''))) problems.push(`${id}.details.${field} = ${JSON.stringify(d[field])} does not match ${re}`);
    }
  }
  if (expect.custom) problems.push(...expect.custom(report));
  return problems;
}

// One line for the step's PASS: grade, exit status, the checks that did not pass.
export function describeRun(run) {
  const report = run.report || {};
  const notPassed = allChecks(report).filter((c) => c.verdict !== 'pass' && c.verdict !== 'skipped')
    .map((c) => `${c.id} ${verdictText(c)}`);
  const up = bandwidthOf(checkOf(report, 'bandwidth_up'));
  const down = bandwidthOf(checkOf(report, 'bandwidth_down'));
  const bw = up.kbps !== null || down.kbps !== null
    ? `; up ${Math.round(up.kbps ?? 0)} kbit/s (${up.streams} streams), down ${Math.round(down.kbps ?? 0)} kbit/s (${down.streams} streams)` : '';
  return `grade ${report.grade}, exit ${run.exitCode}, ${(run.ms / 1000).toFixed(1)} s; `
    + `not passed: ${notPassed.join(', ') || 'none'}${bw}`;
}

// The bandwidth checks against a shaped link of `kbit` kbit/s each way: the rate within
// [low × kbit, high × kbit], `streams` = floor(kbps / 1000), and the stream count and verdict
// the shape implies. [] when right.
export function bandwidthProblems(report, { kbit, low, high, streams, verdict }) {
  const problems = [];
  for (const id of ['bandwidth_up', 'bandwidth_down']) {
    const c = checkOf(report, id);
    if (!c) {
      problems.push(`${id}: missing`);
      continue;
    }
    const { kbps, streams: got } = bandwidthOf(c);
    if (kbps === null) {
      problems.push(`${id}: no kbps in its details (${JSON.stringify(c.details)})`);
      continue;
    }
    if (kbps < low * kbit || kbps > high * kbit) {
      problems.push(`${id}: ${Math.round(kbps)} kbit/s is outside ${Math.round(low * 100)}–${Math.round(high * 100)} % of the shaped ${kbit} kbit/s `
        + `(${Math.round(low * kbit)}–${Math.round(high * kbit)})`);
    }
    if (got !== Math.floor(kbps / STREAM_KBPS)) problems.push(`${id}: streams ${got} for ${Math.round(kbps)} kbit/s (floor(kbps/1000) = ${Math.floor(kbps / STREAM_KBPS)})`);
    if (streams !== undefined && !matches(streams, got)) problems.push(`${id}: ${got} streams, the ${kbit} kbit/s shape implies ${[].concat(streams).join(' or ')}`);
    if (verdict && !matches(verdict, c.verdict)) problems.push(`${id}: ${verdictText(c)}, expected ${[].concat(verdict).join(' or ')} for ${got} streams`);
  }
  return problems;
}

// The /check page's report against netcheck's: the same grade, and for each pair [pageId,
// netcheckId] the same pass/fail. Returns {rows: [{page, netcheck, pageVerdict,
// netcheckVerdict, same}], problems}. A pair's page id may be a list of alternatives.
export function compareWithPage(pageReport, netcheckReport, { pairs, grade = true }) {
  const problems = [];
  const rows = [];
  if (grade && pageReport.grade !== netcheckReport.grade) {
    problems.push(`grade: /check says ${pageReport.grade}, netcheck ${netcheckReport.grade}`);
  }
  // warn counts as working (the path exists), as it does for the grade.
  const works = (v) => (v === 'pass' || v === 'warn' ? 'works' : v);
  for (const [pageIds, netId] of pairs) {
    // A page id may be given as alternatives (['wss', 'wss_direct']): the first the page has.
    const pageId = [].concat(pageIds).find((id) => checkOf(pageReport, id)) || [].concat(pageIds)[0];
    const p = checkOf(pageReport, pageId);
    const n = checkOf(netcheckReport, netId);
    const row = { page: pageId, netcheck: netId, pageVerdict: verdictText(p), netcheckVerdict: verdictText(n) };
    row.same = Boolean(p && n && works(p.verdict) === works(n.verdict));
    rows.push(row);
    if (!row.same) problems.push(`/check ${pageId} ${row.pageVerdict} but netcheck ${netId} ${row.netcheckVerdict}`);
  }
  return { rows, problems };
}
