// Validates captured messages against the exported schemas with ajv in strict mode and parses
// the AsyncAPI document: `node contracts.mjs <schema dir> <messages.jsonl>`, one
// {"schema": file, "data": value} per line; prints problems, exits 1 if any.
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { Parser, fromFile } from "@asyncapi/parser";

const [dir, messagesFile] = process.argv.slice(2);
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);
const problems = [];
for (const file of readdirSync(dir).filter((f) => f.endsWith(".schema.json"))) {
  try {
    ajv.addSchema(JSON.parse(readFileSync(join(dir, file), "utf8")), file);
  } catch (err) {
    problems.push(`${file}: ${err.message}`);
  }
}
let checked = 0;
for (const line of readFileSync(messagesFile, "utf8").split("\n").filter(Boolean)) {
  const { schema, data } = JSON.parse(line);
  const validate = ajv.getSchema(schema);
  if (!validate) {
    problems.push(`${schema}: not compiled`);
    continue;
  }
  checked += 1;
  if (!validate(data)) problems.push(`${schema}: ${ajv.errorsText(validate.errors)}`);
}
const parser = new Parser();
const { diagnostics } = await fromFile(parser, resolve(dir, "asyncapi.json")).parse();
for (const d of diagnostics.filter((d) => d.severity === 0)) {
  problems.push(`asyncapi.json: ${d.message} at ${d.path.join(".")}`);
}
console.log(JSON.stringify({ checked, problems }));
process.exit(problems.length ? 1 : 0);
