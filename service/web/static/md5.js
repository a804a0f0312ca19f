/*
 * MD5 (RFC 1321) of a file's bytes: `hashguard hash` submits it beside SHA-256 (some
 * platforms' lists hold only MD5), and Web Crypto has no MD5. Written from the RFC:
 * 64-byte blocks, four rounds of 16 steps, little-endian words.
 */
(function (root) {
  "use strict";

  var SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
  var SINES = new Int32Array(64);
  for (var i = 0; i < 64; i++) SINES[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 4294967296) | 0;

  /* MD5 of a Uint8Array (or ArrayBuffer): 32 hex digits. */
  function md5(input) {
    var bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    var length = bytes.length;
    var padded = new Uint8Array((((length + 8) >> 6) + 1) * 64);
    padded.set(bytes);
    padded[length] = 0x80;
    var view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, (length * 8) >>> 0, true);
    view.setUint32(padded.length - 4, Math.floor(length / 536870912), true);
    var a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    var words = new Int32Array(16);
    for (var offset = 0; offset < padded.length; offset += 64) {
      for (var w = 0; w < 16; w++) words[w] = view.getInt32(offset + w * 4, true);
      var a = a0, b = b0, c = c0, d = d0;
      for (var step = 0; step < 64; step++) {
        var round = step >> 4;
        var f, g;
        if (round === 0) { f = (b & c) | (~b & d); g = step; }
        else if (round === 1) { f = (d & b) | (~d & c); g = (5 * step + 1) & 15; }
        else if (round === 2) { f = b ^ c ^ d; g = (3 * step + 5) & 15; }
        else { f = c ^ (b | ~d); g = (7 * step) & 15; }
        var sum = (a + f + SINES[step] + words[g]) | 0;
        var shift = SHIFTS[round * 4 + (step & 3)];
        a = d;
        d = c;
        c = b;
        b = (b + ((sum << shift) | (sum >>> (32 - shift)))) | 0;
      }
      a0 = (a0 + a) | 0;
      b0 = (b0 + b) | 0;
      c0 = (c0 + c) | 0;
      d0 = (d0 + d) | 0;
    }
    var out = new DataView(new ArrayBuffer(16));
    [a0, b0, c0, d0].forEach(function (word, index) { out.setInt32(index * 4, word, true); });
    var hex = "";
    for (var k = 0; k < 16; k++) hex += out.getUint8(k).toString(16).padStart(2, "0");
    return hex;
  }

  var api = { md5: md5 };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.HashGuardMD5 = api;
})(this);
