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

  /* MD5 of a Uint8Array (or ArrayBuffer): 32 hex digits. The whole blocks are read
     where they are and only the last ones are copied to be padded, so a video of
     hundreds of megabytes is not held twice. */
  function md5(input) {
    var bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
    var length = bytes.length;
    var whole = length - (length % 64);
    var tail = new Uint8Array((((length - whole + 8) >> 6) + 1) * 64);
    tail.set(bytes.subarray(whole));
    tail[length - whole] = 0x80;
    var tailView = new DataView(tail.buffer);
    tailView.setUint32(tail.length - 8, (length * 8) >>> 0, true);
    tailView.setUint32(tail.length - 4, Math.floor(length / 536870912), true);
    var bodyView = new DataView(bytes.buffer, bytes.byteOffset, whole);
    var a0 = 0x67452301, b0 = 0xefcdab89 | 0, c0 = 0x98badcfe | 0, d0 = 0x10325476;
    var words = new Int32Array(16);
    for (var block = 0; block < (whole + tail.length) / 64; block++) {
      var view = block * 64 < whole ? bodyView : tailView;
      var offset = block * 64 < whole ? block * 64 : block * 64 - whole;
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
