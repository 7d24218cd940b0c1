// Validates AsyncAPI documents with the official parser (@asyncapi/parser, pinned in
// package.json and package-lock.json; `make asyncapi` installs it with `npm ci`).
//
//   node tools/asyncapi/validate.mjs schemas/asyncapi.yaml [MORE.yaml ...]
//
// Prints one JSON line per diagnostic, {"file", "severity", "code", "message", "path"} (severity
// 0 is an error, 1 a warning, 2 information, 3 a hint), then one line per file,
// {"file", "errors", "parsed"}. Exits 1 when any file has an error or could not be parsed, else 0.
import { Parser, fromFile, DiagnosticSeverity } from '@asyncapi/parser';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.mjs ASYNCAPI_FILE [...]');
  process.exit(2);
}
const parser = new Parser();
let failed = false;
for (const file of files) {
  let document;
  let diagnostics;
  try {
    ({ document, diagnostics } = await fromFile(parser, file).parse());
  } catch (err) {
    diagnostics = [{ severity: DiagnosticSeverity.Error, code: 'read', message: String(err), path: [] }];
  }
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) errors += 1;
    console.log(JSON.stringify({
      file, severity: d.severity, code: String(d.code), message: d.message, path: d.path.map(String),
    }));
  }
  const parsed = document !== undefined;
  console.log(JSON.stringify({ file, errors, parsed }));
  failed = failed || errors > 0 || !parsed;
}
process.exit(failed ? 1 : 0);
