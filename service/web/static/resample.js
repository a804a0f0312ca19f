/*
 * Pillow's 8-bit image operations that the victim page needs to compute the same hashes
 * as `hashguard hash`, written from Pillow's documented behaviour and checked against it
 * (tests/test_web_hashes.py):
 *
 *   grey()       Image.convert("L"): (R*19595 + G*38470 + B*7471 + 0x8000) >> 16;
 *   resample()   Image.resize() with a convolution filter: coefficients per output pixel
 *                over the filter's support (scaled when shrinking), normalised, turned
 *                into 22-bit fixed point, rows first, then columns, rounded and clipped;
 *   reduce()     Image.reduce(): the rounded average of each factor x factor block;
 *   thumbnail()  Image.thumbnail(): its size rule, reduce() when the image is at least
 *                twice the wanted size (reducing_gap 2.0), then resample().
 *
 * Pixels are interleaved bytes with `bands` values per pixel (1 = grey, 3 = RGB).
 */
(function (root) {
  "use strict";

  var PRECISION_BITS = 22;
  var ONE = 1 << PRECISION_BITS;

  function sinc(x) {
    if (x === 0) return 1;
    x *= Math.PI;
    return Math.sin(x) / x;
  }

  var FILTERS = {
    bilinear: {
      support: 1,
      weight: function (x) {
        if (x < 0) x = -x;
        return x < 1 ? 1 - x : 0;
      },
    },
    lanczos: {
      support: 3,
      weight: function (x) {
        return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
      },
    },
  };

  /* Fixed-point coefficients and source ranges for one axis: from [in0, in1) of inSize
   * samples to outSize samples. */
  function coefficients(inSize, in0, in1, outSize, filter) {
    in0 = Math.fround(in0); // Pillow passes the box as C floats
    var scale = Math.fround(Math.fround(in1) - in0) / outSize;
    var filterScale = scale < 1 ? 1 : scale;
    var support = filter.support * filterScale;
    var ksize = Math.ceil(support) * 2 + 1;
    var weights = new Int32Array(outSize * ksize);
    var bounds = new Int32Array(outSize * 2);
    var k = new Float64Array(ksize);
    for (var xx = 0; xx < outSize; xx++) {
      var center = in0 + (xx + 0.5) * scale;
      var xmin = Math.trunc(center - support + 0.5);
      if (xmin < 0) xmin = 0;
      var xmax = Math.trunc(center + support + 0.5);
      if (xmax > inSize) xmax = inSize;
      xmax -= xmin;
      var total = 0;
      for (var x = 0; x < xmax; x++) {
        k[x] = filter.weight((x + xmin - center + 0.5) / filterScale);
        total += k[x];
      }
      for (x = 0; x < xmax; x++) {
        var w = total !== 0 ? k[x] / total : k[x];
        weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
      }
      bounds[xx * 2] = xmin;
      bounds[xx * 2 + 1] = xmax;
    }
    return { ksize: ksize, weights: weights, bounds: bounds };
  }

  function clip8(sum) {
    var v = Math.floor(sum / ONE);
    return v < 0 ? 0 : v > 255 ? 255 : v;
  }

  /* Resize `src` (width x height, `bands` per pixel) to outWidth x outHeight with the
   * named filter ("lanczos" or "bilinear"); `box` = [x0, y0, x1, y1] of the source to
   * use, the whole image when left out. */
  function resample(src, width, height, bands, outWidth, outHeight, filterName, box) {
    var filter = FILTERS[filterName];
    box = box || [0, 0, width, height];
    var needRows = outWidth !== width || box[0] !== 0 || box[2] !== outWidth;
    var needCols = outHeight !== height || box[1] !== 0 || box[3] !== outHeight;
    var vert = coefficients(height, box[1], box[3], outHeight, filter);
    var first = vert.bounds[0];
    var last = vert.bounds[outHeight * 2 - 2] + vert.bounds[outHeight * 2 - 1];
    var image = src;
    var imageWidth = width;
    var rowOffset = 0;
    if (needRows) {
      var horiz = coefficients(width, box[0], box[2], outWidth, filter);
      var rows = last - first;
      var temp = new Uint8Array(outWidth * rows * bands);
      for (var y = 0; y < rows; y++) {
        var line = (y + first) * width * bands;
        for (var xx = 0; xx < outWidth; xx++) {
          var xmin = horiz.bounds[xx * 2];
          var count = horiz.bounds[xx * 2 + 1];
          var base = xx * horiz.ksize;
          for (var b = 0; b < bands; b++) {
            var sum = ONE / 2;
            for (var x = 0; x < count; x++) {
              sum += src[line + (x + xmin) * bands + b] * horiz.weights[base + x];
            }
            temp[(y * outWidth + xx) * bands + b] = clip8(sum);
          }
        }
      }
      image = temp;
      imageWidth = outWidth;
      rowOffset = first;
    }
    if (!needCols) return image === src ? src.slice() : image;
    var out = new Uint8Array(imageWidth * outHeight * bands);
    for (var yy = 0; yy < outHeight; yy++) {
      var ymin = vert.bounds[yy * 2] - rowOffset;
      var ycount = vert.bounds[yy * 2 + 1];
      var kbase = yy * vert.ksize;
      for (var col = 0; col < imageWidth * bands; col++) {
        var acc = ONE / 2;
        for (var j = 0; j < ycount; j++) {
          acc += image[(j + ymin) * imageWidth * bands + col] * vert.weights[kbase + j];
        }
        out[yy * imageWidth * bands + col] = clip8(acc);
      }
    }
    return out;
  }

  /* Image.convert("L") of RGB or RGBA pixels (alpha ignored). */
  function grey(pixels, width, height, channels) {
    var out = new Uint8Array(width * height);
    for (var p = 0, q = 0; p < out.length; p++, q += channels) {
      out[p] = (pixels[q] * 19595 + pixels[q + 1] * 38470 + pixels[q + 2] * 7471 + 0x8000) >>> 16;
    }
    return out;
  }

  /* RGB bytes (3 per pixel) of RGB or RGBA pixels. */
  function rgb(pixels, width, height, channels) {
    if (channels === 3) return pixels;
    var out = new Uint8Array(width * height * 3);
    for (var p = 0, q = 0; q < out.length; p += channels, q += 3) {
      out[q] = pixels[p];
      out[q + 1] = pixels[p + 1];
      out[q + 2] = pixels[p + 2];
    }
    return out;
  }

  /* Image.reduce((fx, fy)): each output pixel the rounded average of its block (the
   * last row and column average the pixels that exist). */
  function reduce(src, width, height, bands, fx, fy) {
    var outWidth = Math.ceil(width / fx);
    var outHeight = Math.ceil(height / fy);
    var out = new Uint8Array(outWidth * outHeight * bands);
    for (var oy = 0; oy < outHeight; oy++) {
      var y1 = Math.min(height, (oy + 1) * fy);
      for (var ox = 0; ox < outWidth; ox++) {
        var x1 = Math.min(width, (ox + 1) * fx);
        var n = (y1 - oy * fy) * (x1 - ox * fx);
        for (var b = 0; b < bands; b++) {
          var sum = 0;
          for (var y = oy * fy; y < y1; y++) {
            for (var x = ox * fx; x < x1; x++) sum += src[(y * width + x) * bands + b];
          }
          out[(oy * outWidth + ox) * bands + b] = Math.floor((sum + Math.floor(n / 2)) / n);
        }
      }
    }
    return { data: out, width: outWidth, height: outHeight };
  }

  /* Image.thumbnail((side, side), BILINEAR): the size Pillow picks, and the pixels. */
  function thumbnail(src, width, height, bands, side) {
    if (side >= width && side >= height) return { data: src, width: width, height: height };
    var aspect = width / height;
    var outWidth = side;
    var outHeight = side;
    function roundAspect(number, key) {
      var low = Math.floor(number);
      var high = Math.ceil(number);
      return Math.max(key(high) < key(low) ? high : low, 1);
    }
    if (side / side >= aspect) {
      outWidth = roundAspect(side * aspect, function (n) { return Math.abs(aspect - n / side); });
    } else {
      outHeight = roundAspect(side / aspect, function (n) {
        return n === 0 ? 0 : Math.abs(aspect - side / n);
      });
    }
    var box = [0, 0, width, height];
    var fx = Math.trunc(width / outWidth / 2) || 1;
    var fy = Math.trunc(height / outHeight / 2) || 1;
    var data = src;
    var w = width;
    var h = height;
    if (fx > 1 || fy > 1) {
      var reduced = reduce(src, width, height, bands, fx, fy);
      data = reduced.data;
      w = reduced.width;
      h = reduced.height;
      box = [0, 0, width / fx, height / fy];
    }
    return {
      data: resample(data, w, h, bands, outWidth, outHeight, "bilinear", box),
      width: outWidth,
      height: outHeight,
    };
  }

  var api = { grey: grey, rgb: rgb, resample: resample, reduce: reduce, thumbnail: thumbnail };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.HashGuardResample = api;
})(this);
