/*
 * Every hash `hashguard hash` submits for one photo, computed here from the file's bytes
 * and the pixels the browser decoded: PDQ with quality, pHash, SHA-256, MD5 and the
 * pdq-window hashes, then the same filter as the CLI (service/submission_checks.py's
 * `degenerate`): a hash that would match unrelated pictures is left out, and for the
 * photo's own PDQ and pHash the page says so. Needs pdq.js, phash.js, md5.js, windows.js.
 */
(function (root) {
  "use strict";

  var node = typeof module === "object" && module.exports;
  var PDQ = node ? require("./pdq.js") : root.HashGuardPDQ;
  var PHash = node ? require("./phash.js") : root.HashGuardPHash;
  var MD5 = node ? require("./md5.js") : root.HashGuardMD5;
  var Windows = node ? require("./windows.js") : root.HashGuardWindows;

  var MIN_PDQ_QUALITY = 50; // the service's default --pdq-min-quality
  var MIN_BIT_SHARE = 1 / 8; // service/submission_checks.py

  function ones(hex) {
    var count = 0;
    for (var i = 0; i < hex.length; i++) {
      var v = parseInt(hex[i], 16);
      while (v) { count += v & 1; v >>= 1; }
    }
    return count;
  }

  /* Why a hash cannot be listed ("constant", "low_quality", "near_constant"), or null. */
  function degenerate(hash) {
    if (/^(..)\1*$/.test(hash.hex)) return "constant";
    var perceptual = hash.algorithm === "pdq" || hash.algorithm === "pdq-window" || hash.algorithm === "phash";
    var pdq = hash.algorithm === "pdq" || hash.algorithm === "pdq-window";
    if (pdq && hash.quality !== undefined && hash.quality < MIN_PDQ_QUALITY) return "low_quality";
    if (perceptual) {
      var bits = hash.hex.length * 4;
      var set = ones(hash.hex);
      if (Math.min(set, bits - set) < bits * MIN_BIT_SHARE) return "near_constant";
    }
    return null;
  }

  function hex(buffer) {
    return Array.prototype.map
      .call(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); })
      .join("");
  }

  /*
   * {hashes: [{algorithm, hex, quality?}], leftOut: ["pdq" | "phash", ...]} for a file's
   * `bytes` (ArrayBuffer) and its decoded `pixels` (RGBA, as canvas ImageData gives).
   * `windows` false leaves the pdq-window hashes out (hashguard hash --no-windows).
   */
  async function fingerprints(bytes, pixels, width, height, channels, windows) {
    var pdq = PDQ.pdqFromPixels(pixels, width, height, channels);
    var all = [
      { algorithm: "pdq", hex: pdq.hash, quality: pdq.quality },
      { algorithm: "phash", hex: PHash.phashFromPixels(pixels, width, height, channels) },
      { algorithm: "sha256", hex: hex(await root.crypto.subtle.digest("SHA-256", bytes)) },
      { algorithm: "md5", hex: MD5.md5(bytes) },
    ];
    if (windows !== false) {
      Windows.windowHashes(pixels, width, height, channels, MIN_PDQ_QUALITY).forEach(function (w) {
        all.push({ algorithm: "pdq-window", hex: w.hex, quality: w.quality });
      });
    }
    var kept = [];
    var leftOut = [];
    all.forEach(function (hash) {
      if (degenerate(hash) === null) kept.push(hash);
      else if (hash.algorithm !== "pdq-window") leftOut.push(hash.algorithm);
    });
    return { hashes: kept, leftOut: leftOut };
  }

  var api = { fingerprints: fingerprints, degenerate: degenerate };
  if (node) module.exports = api;
  else root.HashGuardFingerprints = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
