/*
 * PDQ perceptual hash (256 bits + quality 0-100), written for HashGuard from the published
 * description of Meta's PDQ algorithm ("PDQ hashing" doc in facebook/ThreatExchange):
 *
 *   1. luminance Y = 0.299 R + 0.587 G + 0.114 B per pixel;
 *   2. a tent filter made of two rounds of 1-D box filters along rows then columns
 *      (Jarosz), each box ceil(side / 128) pixels wide, then one sample per 64th of the
 *      image (the pixel at the centre of each cell) -> 64 x 64;
 *   3. quality: the sum of |neighbour differences| (each in 1/100ths of full scale,
 *      truncated to an integer) over the 64 x 64 image, divided by 90, capped at 100;
 *   4. the 2-D DCT-II of the 64 x 64 image, keeping frequencies 1..16 on each axis;
 *   5. bit (row, col) is 1 when that coefficient is above the median of the 256.
 *
 * The hex form is PDQ's canonical one (what ThreatExchange and StopNCII exchange): bit
 * k = row * 16 + col, printed most significant first, so the first hex digit holds bits
 * 255..252. The same file runs in the browser (window.HashGuardPDQ) and in Node (tests).
 */
(function (root) {
  "use strict";

  var CELLS = 64;
  var KEPT = 16;

  /* DCT-II basis rows for frequencies 1..16 over 64 samples, orthonormal scale. */
  var BASIS = (function () {
    var scale = Math.sqrt(2 / CELLS);
    var basis = new Float64Array(KEPT * CELLS);
    for (var u = 0; u < KEPT; u++) {
      for (var x = 0; x < CELLS; x++) {
        basis[u * CELLS + x] = scale * Math.cos((Math.PI / (2 * CELLS)) * (u + 1) * (2 * x + 1));
      }
    }
    return basis;
  })();

  /* Luminance of every pixel; `channels` is 3 (RGB) or 4 (RGBA, alpha ignored). */
  function luminance(pixels, width, height, channels) {
    var out = new Float64Array(width * height);
    for (var p = 0, q = 0; p < out.length; p++, q += channels) {
      out[p] = 0.299 * pixels[q] + 0.587 * pixels[q + 1] + 0.114 * pixels[q + 2];
    }
    return out;
  }

  /*
   * One box-filter pass over `count` lines of `length` samples (`step` apart inside a line,
   * `lineStep` between lines). Output o averages the inputs from o - (window - half) to
   * o + half - 1, half = floor((window + 2) / 2), clipped to the line: near the ends the
   * average is over the samples that exist. Prefix sums make it O(length) per line.
   */
  function boxPass(src, dst, count, length, step, lineStep, window) {
    var half = Math.floor((window + 2) / 2);
    var before = window - half;
    var after = half - 1;
    var prefix = new Float64Array(length + 1);
    for (var line = 0; line < count; line++) {
      var base = line * lineStep;
      for (var i = 0; i < length; i++) {
        prefix[i + 1] = prefix[i] + src[base + i * step];
      }
      for (var o = 0; o < length; o++) {
        var lo = o - before < 0 ? 0 : o - before;
        var hi = o + after > length - 1 ? length - 1 : o + after;
        dst[base + o * step] = (prefix[hi + 1] - prefix[lo]) / (hi - lo + 1);
      }
    }
  }

  /* Tent-filter the luminance and take the 64 x 64 cell centres. */
  function downsample(luma, width, height) {
    var alongRows = Math.ceil(width / (2 * CELLS));
    var alongCols = Math.ceil(height / (2 * CELLS));
    var a = luma;
    var b = new Float64Array(luma.length);
    for (var round = 0; round < 2; round++) {
      boxPass(a, b, height, width, 1, width, alongRows);
      boxPass(b, a, width, height, width, 1, alongCols);
    }
    var cells = new Float64Array(CELLS * CELLS);
    for (var r = 0; r < CELLS; r++) {
      var y = Math.floor(((r + 0.5) * height) / CELLS);
      for (var c = 0; c < CELLS; c++) {
        var x = Math.floor(((c + 0.5) * width) / CELLS);
        cells[r * CELLS + c] = a[y * width + x];
      }
    }
    return cells;
  }

  /* How much structure the image has: flat or tiny images score low. */
  function quality(cells) {
    var total = 0;
    for (var r = 0; r < CELLS; r++) {
      for (var c = 0; c < CELLS; c++) {
        var here = cells[r * CELLS + c];
        if (r + 1 < CELLS) total += Math.abs(Math.trunc(((here - cells[(r + 1) * CELLS + c]) * 100) / 255));
        if (c + 1 < CELLS) total += Math.abs(Math.trunc(((here - cells[r * CELLS + c + 1]) * 100) / 255));
      }
    }
    return Math.min(100, Math.trunc(total / 90));
  }

  /* Coefficients (u, v), u, v = 1..16, of the 2-D DCT: BASIS * cells * BASIS^T. */
  function lowFrequencies(cells) {
    var partial = new Float64Array(KEPT * CELLS); // BASIS * cells
    for (var u = 0; u < KEPT; u++) {
      for (var x = 0; x < CELLS; x++) {
        var acc = 0;
        for (var k = 0; k < CELLS; k++) acc += BASIS[u * CELLS + k] * cells[k * CELLS + x];
        partial[u * CELLS + x] = acc;
      }
    }
    var coeffs = new Float64Array(KEPT * KEPT);
    for (var i = 0; i < KEPT; i++) {
      for (var v = 0; v < KEPT; v++) {
        var sum = 0;
        for (var j = 0; j < CELLS; j++) sum += partial[i * CELLS + j] * BASIS[v * CELLS + j];
        coeffs[i * KEPT + v] = sum;
      }
    }
    return coeffs;
  }

  /* 256 coefficients -> canonical 64-hex-digit PDQ string. */
  function toHex(coeffs) {
    var sorted = Array.prototype.slice.call(coeffs).sort(function (p, q) { return p - q; });
    var median = sorted[coeffs.length / 2 - 1]; // the lower middle value
    var hex = "";
    for (var nibble = 63; nibble >= 0; nibble--) {
      var value = 0;
      for (var bit = 3; bit >= 0; bit--) {
        value = (value << 1) | (coeffs[nibble * 4 + bit] > median ? 1 : 0);
      }
      hex += value.toString(16);
    }
    return hex;
  }

  /*
   * PDQ of decoded pixels: `pixels` holds width * height pixels of `channels` bytes
   * (3 = RGB, 4 = RGBA as canvas ImageData gives). Returns {hash: hex string, quality}.
   */
  function pdqFromPixels(pixels, width, height, channels) {
    if (!(width > 0 && height > 0)) throw new Error("image has no pixels");
    if (pixels.length < width * height * channels) throw new Error("pixel buffer too short");
    var cells = downsample(luminance(pixels, width, height, channels), width, height);
    return { hash: toHex(lowFrequencies(cells)), quality: quality(cells) };
  }

  var api = { pdqFromPixels: pdqFromPixels };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.HashGuardPDQ = api;
})(this);
