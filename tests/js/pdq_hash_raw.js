// Hash raw RGB files with service/web/static/pdq.js, for tests/test_web_pdq.py.
// Usage: node pdq_hash_raw.js MANIFEST.json  (a list of {path, width, height});
// prints a JSON list of {hash, quality} in the same order.
"use strict";
const fs = require("fs");
const path = require("path");
const { pdqFromPixels } = require(path.join(__dirname, "../../service/web/static/pdq.js"));

const manifest = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const results = manifest.map((item) => {
  const pixels = fs.readFileSync(item.path);
  return pdqFromPixels(pixels, item.width, item.height, 3);
});
process.stdout.write(JSON.stringify(results));
