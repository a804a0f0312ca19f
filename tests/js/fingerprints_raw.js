// Every hash the victim page computes (service/web/static/fingerprints.js), for
// tests/test_web_hashes.py and loadtests/web_hash_agreement.py, on pixels decoded by
// Pillow. Usage: node fingerprints_raw.js MANIFEST.json (a list of {file, pixels, width,
// height}: the file's bytes and its raw RGB); prints a JSON list of fingerprints.
"use strict";
const fs = require("fs");
const path = require("path");
const { fingerprints } = require(path.join(__dirname, "../../service/web/static/fingerprints.js"));

(async () => {
  const manifest = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const results = [];
  for (const item of manifest) {
    const bytes = new Uint8Array(fs.readFileSync(item.file));
    const pixels = new Uint8Array(fs.readFileSync(item.pixels));
    results.push(await fingerprints(bytes.buffer, pixels, item.width, item.height, 3, true));
  }
  process.stdout.write(JSON.stringify(results));
})();
