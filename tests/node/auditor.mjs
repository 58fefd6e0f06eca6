// Reads every message of a stream as keyledger's auditor with the current nats.js API
// (js.consumers.get(stream): an ordered pull consumer) and prints one JSON line each.
// usage: node auditor.mjs NATS_URL CREDENTIALS_JSON [STREAM]
import { readFileSync } from "node:fs";
import { connect } from "nats";

const [url, credentialsFile, stream = "KEYS"] = process.argv.slice(2);
const { user, password } = JSON.parse(readFileSync(credentialsFile, "utf8"));
// the auditor may read only its own inbox, never the shared _INBOX
const nc = await connect({ servers: url, user, pass: password, inboxPrefix: `_INBOX_${user}` });
try {
  const jsm = await nc.jetstreamManager();
  const last = (await jsm.streams.info(stream)).state.last_seq;
  if (last > 0) {
    const consumer = await nc.jetstream().consumers.get(stream); // no name: ordered
    const messages = await consumer.consume();
    for await (const m of messages) {
      const data = Buffer.from(m.data).toString("base64");
      process.stdout.write(JSON.stringify({ seq: m.seq, subject: m.subject, data }) + "\n");
      if (m.seq >= last) break; // the stream's end when reading began
    }
  }
} finally {
  await nc.close();
}
