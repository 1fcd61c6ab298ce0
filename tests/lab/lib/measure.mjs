// What the lab measures in the pages: time to first decoded frame, the ICE candidates each
// side gathered and the pair it selected, and the reason the page shows when media cannot
// connect.

// Starts a watcher in the page (every 100 ms) that records the wall-clock time when the first
// video frame from any remote participant was decoded: window.labFirstFrame = {at, from}.
export function watchFirstFrame(page) {
  return page.evaluate(() => {
    if (window.labFirstFrameTimer) return;
    window.labFirstFrame = null;
    window.labFirstFrameTimer = setInterval(async () => {
      if (window.labFirstFrame || !window.parleyDebug) return;
      let stats;
      try {
        stats = await window.parleyDebug.stats();
      } catch {
        return;
      }
      for (const [id, peer] of Object.entries(stats)) {
        const frames = peer.inbound.filter((s) => s.kind === 'video').reduce((n, s) => n + (s.framesDecoded || 0), 0);
        if (frames > 0 && !window.labFirstFrame) {
          window.labFirstFrame = { at: Date.now(), from: id };
          clearInterval(window.labFirstFrameTimer);
        }
      }
    }, 100);
  });
}

export function firstFrame(page) {
  return page.evaluate(() => window.labFirstFrame || null).catch(() => null);
}

// The status banner's reason, when the page shows one: {reason, text, checkLink}.
export function shownReason(page) {
  return page.evaluate(() => {
    const banner = document.querySelector('[data-testid=status-banner]');
    if (!banner || banner.hidden || !banner.dataset.reason) return null;
    const link = banner.querySelector('a[href="/check"]');
    return { reason: banner.dataset.reason, text: banner.textContent.trim(), checkLink: Boolean(link) };
  }).catch(() => null);
}

// Every local candidate the page's connection to `remoteId` gathered (type, protocol, relay
// protocol, TURN URL) and the selected pair with the TURN URL of its local candidate.
export function iceSummary(page, remoteId) {
  return page.evaluate(async (id) => {
    const meeting = window.parleyDebug && window.parleyDebug.meeting;
    const peer = meeting && meeting.peers.get(id);
    if (!peer) return null;
    const report = await peer.pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    const local = [];
    let pairId = null;
    report.forEach((s) => {
      if (s.type === 'local-candidate') {
        local.push(`${s.candidateType}${s.relayProtocol ? `/${s.relayProtocol}` : ''} ${s.protocol} ${s.address}:${s.port}${s.url ? ` (${s.url})` : ''}`);
      }
      if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    const pair = pairId && byId.get(pairId);
    let selected = null;
    if (pair) {
      const l = byId.get(pair.localCandidateId) || {};
      const r = byId.get(pair.remoteCandidateId) || {};
      selected = {
        local: { candidateType: l.candidateType, relayProtocol: l.relayProtocol || null, protocol: l.protocol,
          address: l.address, port: l.port, url: l.url || null },
        remote: { candidateType: r.candidateType, protocol: r.protocol, address: r.address, port: r.port },
        rttMs: typeof pair.currentRoundTripTime === 'number' ? Math.round(pair.currentRoundTripTime * 1000) : null,
      };
    }
    return { local: [...new Set(local)].sort(), selected, events: peer.events.slice(-30) };
  }, remoteId).catch((err) => ({ error: err.message }));
}

// 'relay/tls', 'srflx', ... for a selected pair's local side.
export function transportOf(selected) {
  if (!selected) return null;
  const l = selected.local;
  return l.candidateType === 'relay' ? `relay/${l.relayProtocol}` : l.candidateType;
}

// "relay/tls via turns:parley.lab:443 -> srflx (udp)"
export function describePair(selected) {
  if (!selected) return 'no pair';
  const l = selected.local;
  const via = l.url ? ` via ${l.url.replace(/\?.*$/, '')}` : '';
  return `${transportOf(selected)}${via} -> ${selected.remote.candidateType} (${selected.local.protocol})`;
}
