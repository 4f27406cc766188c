// An alarm receiving centre played by a third-party SIP stack (npm "sip"
// 0.0.6, not Vaka's), for the tests of Vaka's SCAIP sender
// (notify/scaip_peer_test.go). It challenges every MESSAGE with Digest
// (its own digest module), answers 200 OK once authenticated, then sends
// its own <mrs> MESSAGE back with the snu the test chose for that message
// type, and prints what it saw as JSON lines:
//   {"ev":"ready"}                                   listening
//   {"ev":"mrq","body":"<mrq>…</mrq>","proto":"UDP","auth":true}
//   {"ev":"mrs","ref":"…","snu":4,"status":200}      the sender's answer to our <mrs>
//   {"ev":"challenge"}                                a 401 sent (a new nonce)
//
// A nonce serves every request signed with it (looked up by the nonce in
// the Authorization, as a receiver that lets senders reuse it must; npm
// sip's digest module then expects the nonce counts in order), unless
// "nonceScope": "call" keeps it per Call-ID, as npm sip's examples do:
// a sender reusing it across calls is then refused 403.
//
// Usage: node scaip-centre.js CONFIG_JSON, where the config is
//   {"sip": "path to sip.js", "transport": "udp|tcp|tls", "address": "127.0.0.2",
//    "cert": "PEM", "key": "PEM" (tls), "nonceScope": "nonce|call",
//    "port": 45000, "user": "vaka", "password": "p", "realm": "larm",
//    "answers": {"ME": [4, 0], "IN": [0], "RE": [0], "PI": [0]},
//    "timeoutMs": 20000}
// answers[mty][i] is the snu for the i-th message of that type (the last
// one repeats); an empty list or null means never answer with an <mrs>.
// "delays": {"ME": [1500, 1000, 500]} waits that many ms before the i-th
// <mrs> of that type (default 20; the last one repeats): answers to
// overlapping requests then come back in another order than asked.
'use strict';
const cfg = JSON.parse(process.argv[2]);
const sip = require(cfg.sip);
const digest = require(cfg.sip.replace(/sip(\.js)?$/, 'digest'));

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const ctxs = {};
const counts = {};
let seq = 1;

const opts = {
  address: cfg.address,
  port: cfg.port,
  udp: cfg.transport === 'udp',
  tcp: cfg.transport === 'tcp',
  logger: { error: (e) => out({ ev: 'error', msg: String(e) }) },
};
if (cfg.transport === 'tls') {
  opts.tls = { key: cfg.key, cert: cfg.cert };
  opts.tls_port = cfg.port;
}
const unq = (v) => (v || '').replace(/^"(.*)"$/, '$1');
const stack = sip.create(opts, (rq, remote) => {
  if (rq.method !== 'MESSAGE') {
    stack.send(sip.makeResponse(rq, 405, 'Method Not Allowed'));
    return;
  }
  const byCall = cfg.nonceScope === 'call';
  const callId = rq.headers['call-id'];
  const auth = (rq.headers.authorization || [])[0];
  if (!auth) {
    const ctx = { realm: cfg.realm, qop: 'auth' };
    stack.send(digest.challenge(ctx, sip.makeResponse(rq, 401, 'Unauthorized')));
    ctxs[byCall ? callId : ctx.nonce] = ctx;
    out({ ev: 'challenge' });
    return;
  }
  const ctx = ctxs[byCall ? callId : unq(auth.nonce)];
  if (!ctx || !digest.authenticateRequest(ctx, rq, { user: cfg.user, password: cfg.password })) {
    stack.send(sip.makeResponse(rq, 403, 'Forbidden'));
    return;
  }
  stack.send(sip.makeResponse(rq, 200, 'OK'));
  const body = String(rq.content || '');
  out({ ev: 'mrq', body, proto: remote.protocol, auth: true });
  // Only what a centre needs to answer: the ref and the message type.
  const ref = (/<ref>([^<]*)<\/ref>/.exec(body) || [])[1] || '';
  const mty = (/<mty>([^<]*)<\/mty>/.exec(body) || [])[1] || 'ME';
  const list = cfg.answers[mty];
  if (!list || list.length === 0) return; // this centre never answers
  const n = counts[mty] = (counts[mty] || 0) + 1;
  const snu = list[Math.min(n, list.length) - 1];
  const dl = (cfg.delays || {})[mty] || [20];
  setTimeout(() => {
    const proto = remote.protocol.toLowerCase();
    stack.send({
      method: 'MESSAGE',
      uri: `sip:vaka@${remote.address}:${remote.port};transport=${proto}`,
      headers: {
        to: { uri: `sip:vaka@${remote.address}` },
        from: { uri: `sip:larm@${cfg.address}:${cfg.port}`, params: { tag: String(Math.floor(Math.random() * 1e9)) } },
        'call-id': `${Date.now()}-${seq}-${Math.random()}`,
        cseq: { method: 'MESSAGE', seq: seq++ },
        'content-type': 'application/scaip+xml',
      },
      content: `<mrs><ref>${ref}</ref><snu>${snu}</snu></mrs>`,
    }, (rs) => {
      if (rs.status >= 200) out({ ev: 'mrs', ref, snu, status: rs.status });
    });
  }, dl[Math.min(n, dl.length) - 1]);
});

setTimeout(() => { out({ ev: 'timeout' }); stack.destroy(); process.exit(2); }, cfg.timeoutMs || 20000);
out({ ev: 'ready' });
