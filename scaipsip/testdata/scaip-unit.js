// A SCAIP alarm unit played by a third-party SIP stack (npm "sip" 0.0.6,
// not Vaka's): it sends each <mrq> as a SIP MESSAGE to the hub, answers the
// Digest challenge with its own digest module, and prints what comes back
// as JSON lines, one per event, for the Go test to check:
//   {"ev":"final","i":0,"status":200}       the SIP answer to message i
//   {"ev":"mrs","body":"<mrs>…</mrs>"}      an <mrs> MESSAGE from the hub
//   {"ev":"done"}                            every message answered
//
// Usage: node scaip-unit.js CONFIG_JSON, where the config is
//   {"sip": "path to the sip module", "transport": "udp|tcp|tls",
//    "hub": "127.0.0.1:5060", "port": 45000, "user": "u", "password": "p",
//    "bodies": ["<mrq>…</mrq>"], "expectMrs": 1, "timeoutMs": 10000,
//    "noAuth": false, "cert": "PEM", "key": "PEM"}
'use strict';
const cfg = JSON.parse(process.argv[2]);
const sip = require(cfg.sip);
const digest = require(cfg.sip.replace(/sip(\.js)?$/, 'digest'));

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const opts = {
  address: '127.0.0.2', // not the hub's 127.0.0.1: npm sip takes a request to its own address for a flow token
  port: cfg.port,
  udp: cfg.transport === 'udp',
  tcp: cfg.transport === 'tcp',
  logger: { error: (e) => out({ ev: 'error', msg: String(e) }) },
};
if (cfg.transport === 'tls') {
  opts.tls = { key: cfg.key, cert: cfg.cert, rejectUnauthorized: false };
  opts.tls_port = cfg.port;
}
let mrsSeen = 0;
let finals = 0;
const stack = sip.create(opts, (rq) => {
  if (rq.method === 'MESSAGE') {
    out({ ev: 'mrs', body: rq.content, ct: rq.headers['content-type'] });
    stack.send(sip.makeResponse(rq, 200, 'OK'));
    mrsSeen++;
    maybeDone();
  } else {
    stack.send(sip.makeResponse(rq, 405, 'Method Not Allowed'));
  }
});

function maybeDone() {
  if (finals === cfg.bodies.length && mrsSeen >= cfg.expectMrs) {
    out({ ev: 'done' });
    setTimeout(() => { stack.destroy(); process.exit(0); }, 50);
  }
}

const [host, port] = cfg.hub.split(':');
const scheme = cfg.transport === 'tls' ? 'sips' : 'sip';
const uri = `${scheme}:scaip@${host}:${port};transport=${cfg.transport}`;
let ctx = {};
let callSeq = 1;

function send(i) {
  if (i >= cfg.bodies.length) return;
  const rq = {
    method: 'MESSAGE',
    uri,
    headers: {
      to: { uri: `${scheme}:scaip@${host}` },
      from: { uri: `${scheme}:${cfg.user}@127.0.0.2:${cfg.port}`, params: { tag: String(Math.floor(Math.random() * 1e9)) } },
      'call-id': `${Date.now()}-${i}-${Math.random()}`,
      cseq: { method: 'MESSAGE', seq: callSeq++ },
      'content-type': 'application/scaip+xml',
      contact: [{ uri: `${scheme}:${cfg.user}@127.0.0.2:${cfg.port};transport=${cfg.transport}` }],
    },
    content: cfg.bodies[i],
  };
  if (cfg.sign && ctx.nonce) digest.signRequest(ctx, rq, null, { user: cfg.user, password: cfg.password });
  stack.send(rq, (rs) => {
    if (rs.status < 200) return;
    if ((rs.status === 401 || rs.status === 407) && !cfg.noAuth && !rq.signed) {
      const again = JSON.parse(JSON.stringify(rq));
      again.signed = true;
      again.headers.cseq.seq = callSeq++;
      delete again.headers.via;
      ctx = {};
      digest.signRequest(ctx, again, rs, { user: cfg.user, password: cfg.password });
      stack.send(again, (rs2) => {
        if (rs2.status < 200) return;
        out({ ev: 'final', i, status: rs2.status, auth: 'digest' });
        finals++;
        maybeDone();
        send(i + 1);
      });
      return;
    }
    out({ ev: 'final', i, status: rs.status, challenge: rs.headers['www-authenticate'] ? 'digest' : '' });
    finals++;
    maybeDone();
    send(i + 1);
  });
}

setTimeout(() => { out({ ev: 'timeout', finals, mrs: mrsSeen }); stack.destroy(); process.exit(2); }, cfg.timeoutMs || 10000);
send(0);
