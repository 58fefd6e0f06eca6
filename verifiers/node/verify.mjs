#!/usr/bin/env node
// Verifies keyledger's KEYS and NOTIFY hash chains (and their signed checkpoints) as
// AUDITING.md describes, reading as the auditor from its copies or from `keyledger export`
// files, and prints one JSON report: {"ok": true, ...} or the first bad event.
//
// node verify.mjs --url URL [--creds FILE] [--stream NAME[=AS]]... [--checkpoints-stream NAME]
//                 [--public-key FILE]
// node verify.mjs --file history.jsonl [--checkpoints-file cp.jsonl] [--public-key FILE]
//
// --stream KEYSCOPY=KEYS reads stream KEYSCOPY and checks it against KEYS's checkpoints.
// Exit codes as `keyledger replay --verify`: 0 ok, 1 a broken chain, 5 a broken checkpoint,
// 4 foreign messages around intact chains, 2 usage.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { connect } from "nats";
import { verifyStream } from "./chain.mjs";

const USAGE = 2;
const { values } = parseArgs({
  options: {
    url: { type: "string" },
    creds: { type: "string" },
    stream: { type: "string", multiple: true },
    "checkpoints-stream": { type: "string", default: "CHECKPOINTS" },
    file: { type: "string" },
    "checkpoints-file": { type: "string" },
    "public-key": { type: "string" },
  },
});

function fail(message) {
  process.stderr.write(`error: usage: ${message}\n`);
  process.exit(USAGE);
}

function readPublicKey(path) {
  const raw = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
  if (raw.length !== 32) fail(`${path} does not hold a base64 32-byte Ed25519 public key`);
  return raw;
}

const jsonLines = (path) =>
  readFileSync(path, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

// `keyledger export` lines: data is the stored body as text, data_base64 when not UTF-8
function fromExport(line) {
  const data = typeof line.data === "string"
    ? Buffer.from(line.data, "utf8")
    : Buffer.from(line.data_base64 ?? "", "base64");
  return { stream: line.stream, seq: line.seq, subject: line.subject, data };
}

// every message of a stream (ordered consumer: no name, no acks), up to its end when reading began
async function readStream(js, jsm, stream) {
  let last;
  try {
    last = (await jsm.streams.info(stream)).state.last_seq;
  } catch (err) {
    if (String(err?.message).includes("stream not found")) return null;
    throw err;
  }
  const messages = [];
  if (last === 0) return messages;
  const consumer = await js.consumers.get(stream);
  for await (const m of await consumer.consume()) {
    if (m.seq <= last) messages.push({ seq: m.seq, subject: m.subject, data: Buffer.from(m.data) });
    if (m.seq >= last) break;
  }
  return messages;
}

async function online(publicKey) {
  if (values["checkpoints-file"]) fail("--checkpoints-file goes with --file");
  const { user, password } = values.creds ? JSON.parse(readFileSync(values.creds, "utf8")) : {};
  // the auditor may read only its own inbox, never the shared _INBOX
  const auth = user ? { user, pass: password, inboxPrefix: `_INBOX_${user}` } : {};
  const nc = await connect({ servers: values.url, ...auth });
  try {
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const checkpoints = (await readStream(js, jsm, values["checkpoints-stream"])) ?? [];
    const bodies = checkpoints.map((m) => JSON.parse(Buffer.from(m.data).toString("utf8")));
    const verdicts = [];
    for (const spec of values.stream ?? ["KEYS", "NOTIFY"]) {
      const [name, as = name] = spec.split("=");
      const messages = await readStream(js, jsm, name);
      if (messages === null) {
        verdicts.push({ stream: as, read: name, absent: true });
        continue;
      }
      verdicts.push({ read: name, ...verifyStream(as, messages, bodies, publicKey) });
      if (verdicts.at(-1).problem) break;
    }
    return verdicts;
  } finally {
    await nc.close();
  }
}

function offline(publicKey) {
  const records = jsonLines(values.file).map(fromExport).sort((a, b) => a.seq - b.seq);
  const bodies = values["checkpoints-file"] ? jsonLines(values["checkpoints-file"]) : [];
  const streams = [...new Set(records.map((r) => r.stream))];
  const verdicts = [];
  for (const stream of streams.length ? streams : ["KEYS"]) {
    const mine = records.filter((r) => r.stream === stream);
    verdicts.push({ read: values.file, ...verifyStream(stream, mine, bodies, publicKey) });
    if (verdicts.at(-1).problem) break;
  }
  return verdicts;
}

if (!values.url === !values.file) fail("give --url or --file");
const publicKey = values["public-key"] ? readPublicKey(values["public-key"]) : null;
const verdicts = values.url ? await online(publicKey) : offline(publicKey);
const broken = verdicts.find((v) => v.problem);
const findings = verdicts.flatMap((v) =>
  (v.checker?.findings ?? []).map((f) => ({ stream: v.stream, ...f })),
);
const report = {
  ok: !broken && findings.length === 0,
  bad: broken ? broken.problem : null,
  findings,
  signatures_checked: publicKey !== null,
  streams: verdicts.map((v) => ({
    stream: v.stream,
    read: v.read,
    absent: v.absent ?? false,
    events: v.checker?.events ?? 0,
    accounts: v.checker?.heads.size ?? 0,
    checkpoints: v.checkpoints ?? 0,
  })),
};
process.stdout.write(JSON.stringify(report) + "\n");
const chainBroken = verdicts.some((v) => v.problem && v.problem.problem === "chain_broken");
process.exit(chainBroken ? 1 : broken ? 5 : findings.length ? 4 : 0);
