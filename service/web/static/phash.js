/*
 * pHash as imagehash.phash computes it (what `hashguard hash` submits), written from its
 * description: the picture in grey (Pillow's convert("L")), resized to 32 x 32 with
 * Pillow's Lanczos filter, the 2-D DCT-II (scipy.fftpack's, unnormalised: 2 * sum of
 * x[n] cos(pi k (2n + 1) / 64) along columns, then rows), its top-left 8 x 8
 * coefficients, and bit k (row-major, first bit most significant) set when coefficient k
 * is above their median (the mean of the two middle values). Needs resample.js.
 */
(function (root) {
  "use strict";

  var Resample =
    typeof module === "object" && module.exports ? require("./resample.js") : root.HashGuardResample;
  var SIZE = 32;
  var KEPT = 8;

  var BASIS = (function () {
    var basis = new Float64Array(KEPT * SIZE);
    for (var k = 0; k < KEPT; k++) {
      for (var n = 0; n < SIZE; n++) {
        basis[k * SIZE + n] = 2 * Math.cos((Math.PI * k * (2 * n + 1)) / (2 * SIZE));
      }
    }
    return basis;
  })();

  /* pHash of RGB (channels 3) or RGBA (4) pixels: 16 hex digits. */
  function phashFromPixels(pixels, width, height, channels) {
    var small = Resample.resample(
      Resample.grey(pixels, width, height, channels), width, height, 1, SIZE, SIZE, "lanczos"
    );
    var columns = new Float64Array(KEPT * SIZE); // DCT along each column, first 8 terms
    for (var k = 0; k < KEPT; k++) {
      for (var x = 0; x < SIZE; x++) {
        var sum = 0;
        for (var y = 0; y < SIZE; y++) sum += small[y * SIZE + x] * BASIS[k * SIZE + y];
        columns[k * SIZE + x] = sum;
      }
    }
    var coeffs = new Float64Array(KEPT * KEPT);
    for (var r = 0; r < KEPT; r++) {
      for (var c = 0; c < KEPT; c++) {
        var acc = 0;
        for (var n = 0; n < SIZE; n++) acc += columns[r * SIZE + n] * BASIS[c * SIZE + n];
        coeffs[r * KEPT + c] = acc;
      }
    }
    var sorted = Array.prototype.slice.call(coeffs).sort(function (a, b) { return a - b; });
    var median = (sorted[KEPT * KEPT / 2 - 1] + sorted[KEPT * KEPT / 2]) / 2;
    var hex = "";
    for (var nibble = 0; nibble < 16; nibble++) {
      var value = 0;
      for (var bit = 0; bit < 4; bit++) value = (value << 1) | (coeffs[nibble * 4 + bit] > median ? 1 : 0);
      hex += value.toString(16);
    }
    return hex;
  }

  var api = { phashFromPixels: phashFromPixels };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.HashGuardPHash = api;
})(this);
