// The rules of AUDITING.md, written from it alone: canonical form, hash chains, checkpoints.
import { createHash, createPublicKey, verify as verifySignature } from "node:crypto";

export const GENESIS = "0".repeat(64);
const sha256 = (bytes) => createHash("sha256").update(bytes).digest();

// keys sorted at every level (by hand: JSON.stringify puts integer-like keys first),
// no whitespace, strings escaped as JSON.stringify does, which writes non-ASCII raw
export function canonical(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
}

export function chainHash(event) {
  const { hash: _, ...body } = event;
  return sha256(Buffer.from(canonical(body), "utf8")).toString("hex");
}

export const accountOf = (subject) => {
  const at = subject.indexOf(".events.");
  return at < 0 ? "" : subject.slice(at + ".events.".length);
};

const FIELDS = [
  ["stream_id", "string"], ["sequence", "integer"], ["prev_hash", "string"], ["hash", "string"],
  ["event_id", "string"], ["type", "string"], ["occurred_at", "string"], ["actor", "string"],
  ["correlation_id", "string"], ["causation_id", "string"], ["payload", "object"],
];
const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isKind = (v, kind) =>
  kind === "integer" ? Number.isInteger(v) : kind === "object" ? isObject(v) : typeof v === kind;

// why the bytes are not an event of the account the subject names; null if they are
export function parseEvent(bytes, subject) {
  let raw;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return { why: "not JSON" };
  }
  if (!isObject(raw)) return { why: "not a JSON object" };
  for (const [name, kind] of FIELDS) {
    if (!isKind(raw[name], kind)) return { why: `field '${name}' missing or not ${kind}` };
  }
  if (raw.sequence < 1) return { why: "field 'sequence' is not a positive integer" };
  if (subject != null && raw.stream_id !== accountOf(subject)) {
    return { why: "its stream_id is not the account its subject names" };
  }
  return { raw };
}

const short = (text) => (String(text).length > 12 ? `${String(text).slice(0, 12)}…` : String(text));

// feeds one stream's messages in order; the first chain break is returned, foreign messages kept
export class ChainChecker {
  events = 0;
  heads = new Map(); // account -> [sequence, hash]
  findings = [];

  feed(streamSeq, bytes, subject) {
    const { raw, why } = parseEvent(bytes, subject);
    if (!raw) {
      this.findings.push({ stream_seq: streamSeq, subject, reason: why });
      return null;
    }
    const [lastSeq, lastHash] = this.heads.get(raw.stream_id) ?? [0, GENESIS];
    const problem = (reason) => ({
      problem: "chain_broken", stream_seq: streamSeq, account: raw.stream_id,
      sequence: raw.sequence, reason,
    });
    if (raw.sequence !== lastSeq + 1) {
      return problem(`sequence ${raw.sequence} where ${lastSeq + 1} was expected`);
    }
    if (raw.prev_hash !== lastHash) {
      const what = lastSeq === 0 ? "the genesis hash" : `the hash of ${lastSeq}`;
      return problem(`prev_hash ${short(raw.prev_hash)} is not ${what}`);
    }
    const actual = chainHash(raw);
    if (raw.hash !== actual) {
      return problem(
        `hash ${short(raw.hash)} does not match the content (${short(actual)}): the event was altered`,
      );
    }
    this.heads.set(raw.stream_id, [raw.sequence, raw.hash]);
    this.events += 1;
    return null;
  }
}

export function merkleRoot(heads) {
  const ids = [...heads.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let level = ids.map((id) => {
    const [sequence, hash] = heads.get(id);
    const leaf = canonical({ stream_id: id, sequence, hash });
    return sha256(Buffer.concat([Buffer.from([0]), Buffer.from(leaf, "utf8")]));
  });
  if (level.length === 0) return sha256(Buffer.alloc(0)).toString("hex");
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      next.push(sha256(Buffer.concat([Buffer.from([1]), level[i], level[i + 1]])));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]); // carried up unchanged
    level = next;
  }
  return level[0].toString("hex");
}

export function checkpointHash(body) {
  const { hash: _h, signature: _s, ...signed } = body;
  return sha256(Buffer.from(canonical(signed), "utf8")).toString("hex");
}

export const keyId = (publicKey) => sha256(publicKey).toString("hex").slice(0, 16);

const CHECKPOINT_FIELDS = [
  ["stream", "string"], ["number", "integer"], ["last_seq", "integer"], ["accounts", "integer"],
  ["root", "string"], ["prev_hash", "string"], ["at", "string"], ["key_id", "string"],
  ["hash", "string"], ["signature", "string"],
];

// why a checkpoint is not the valid successor of `previous` (null: the first); null if it is
export function checkpointProblem(body, previous, publicKey) {
  if (!isObject(body)) return "not a JSON object";
  for (const [name, kind] of CHECKPOINT_FIELDS) {
    if (!isKind(body[name], kind)) return `field '${name}' missing or not ${kind}`;
  }
  const number = previous ? previous.number + 1 : 1;
  if (body.number !== number) return `number ${body.number} where ${number} was expected`;
  if (body.prev_hash !== (previous ? previous.hash : GENESIS)) {
    return `prev_hash is not ${previous ? `the hash of checkpoint ${number - 1}` : "64 zeros"}`;
  }
  if (previous && body.last_seq < previous.last_seq) {
    return `last_seq ${body.last_seq} is before checkpoint ${number - 1}'s`;
  }
  if (body.hash !== checkpointHash(body)) {
    return "hash does not match the content: the checkpoint was altered";
  }
  if (!publicKey) return null;
  if (body.key_id !== keyId(publicKey)) return `key_id ${body.key_id} is not the given public key's`;
  const key = createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: publicKey.toString("base64url") },
    format: "jwk",
  });
  const signature = Buffer.from(body.signature, "base64");
  if (!verifySignature(null, Buffer.from(body.hash, "ascii"), key, signature)) {
    return "signature does not verify with the given public key";
  }
  return null;
}

export function rootProblem(body, heads) {
  if (body.accounts !== heads.size) {
    return `checkpoint ${body.number} counts ${body.accounts} accounts, the history up to stream sequence ${body.last_seq} has ${heads.size}`;
  }
  if (body.root !== merkleRoot(heads)) {
    return `checkpoint ${body.number}'s root is not the root of the heads replayed up to stream sequence ${body.last_seq}: the history was rewritten`;
  }
  return null;
}

// one stream's messages ({seq, subject, data}) in order, with its checkpoints (AUDITING.md)
export function verifyStream(stream, messages, checkpoints, publicKey) {
  const checker = new ChainChecker();
  const verdict = { stream, checker, checkpoints: 0, problem: null };
  const mine = checkpoints.filter((c) => isObject(c) && c.stream === stream);
  const broken = (code, body, reason) => ({
    problem: code, stream, number: body?.number ?? null, last_seq: body?.last_seq ?? null, reason,
  });
  let previous = null;
  for (const body of mine) {
    const why = checkpointProblem(body, previous, publicKey);
    if (why) return { ...verdict, problem: broken("checkpoint_broken", body, why) };
    previous = body;
  }
  const pending = [...mine];
  const due = (upto) => {
    while (pending.length && pending[0].last_seq < upto) {
      const body = pending.shift();
      const why = rootProblem(body, checker.heads);
      if (why) return broken("checkpoint_mismatch", body, why);
      verdict.checkpoints += 1;
    }
    return null;
  };
  let lastSeq = 0;
  for (const m of messages) {
    const late = due(m.seq) ?? checker.feed(m.seq, m.data, m.subject);
    if (late) return { ...verdict, problem: { stream, ...late } };
    lastSeq = m.seq;
  }
  const late = due(lastSeq + 1);
  if (late) return { ...verdict, problem: late };
  if (pending.length) {
    const body = pending[0];
    const why = `checkpoint ${body.number} covers stream sequence ${body.last_seq}, the history ends at ${lastSeq}: events are missing`;
    return { ...verdict, problem: broken("checkpoint_mismatch", body, why) };
  }
  return verdict;
}
