/*
 * The `pdq-window` hashes `hashguard hash` submits so that cropped, letterboxed and
 * captioned copies match: the photo scaled to at most 512 pixels a side (Pillow's
 * thumbnail, resample.js), the photo inside uniform bars when it has them (the rules of
 * service/borders.py), and the fixed sub-windows of service/crops.py (DEFAULT_WINDOWS),
 * each hashed with PDQ (pdq.js); windows below the quality floor are skipped and
 * duplicates dropped. tests/test_web_hashes.py checks this against the Python code.
 */
(function (root) {
  "use strict";

  var node = typeof module === "object" && module.exports;
  var Resample = node ? require("./resample.js") : root.HashGuardResample;
  var PDQ = node ? require("./pdq.js") : root.HashGuardPDQ;

  var HASH_SIDE = 512;
  var TOLERANCE = 24;
  var LINE_SHARE = 0.97;
  var MIN_BAR = 0.02;
  var MIN_CONTENT = 0.3;
  var STRIP = 0.7;

  /* [width, height, x, y] as fractions, in service/crops.py's order. */
  var WINDOWS = (function () {
    var centre = [[0.5, 0.5]];
    var corners = [[0, 0], [1, 0], [0, 1], [1, 1]];
    var sides = [[0, 0.5], [1, 0.5], [0.5, 0], [0.5, 1]];
    var out = [];
    function grid(scale, anchors) {
      anchors.forEach(function (a) { out.push([scale, scale, a[0], a[1]]); });
    }
    grid(1.0, centre);
    grid(0.95, centre);
    grid(0.9, centre.concat(corners));
    grid(0.85, centre);
    grid(0.8, centre.concat(corners, sides));
    grid(0.75, centre);
    out.push([1.0, STRIP, 0.5, 0], [1.0, STRIP, 0.5, 1]);
    out.push([1.0, 0.8, 0.5, 0], [1.0, 0.8, 0.5, 1]);
    out.push([0.8, 1.0, 0, 0.5], [0.8, 1.0, 1, 0.5]);
    grid(0.85, corners.concat(sides)); /* issue 18: off-centre crops to 85 % and 70 % */
    grid(0.7, centre.concat(corners, sides));
    return out;
  })();

  /* Python's round(): halves go to the even neighbour. */
  function roundHalfEven(x) {
    var floor = Math.floor(x);
    var diff = x - floor;
    if (diff > 0.5) return floor + 1;
    if (diff < 0.5) return floor;
    return floor % 2 === 0 ? floor : floor + 1;
  }

  function windowBox(win, width, height) {
    var w = roundHalfEven(width * win[0]);
    var h = roundHalfEven(height * win[1]);
    var left = roundHalfEven((width - w) * win[2]);
    var top = roundHalfEven((height - h) * win[3]);
    return [left, top, left + w, top + h];
  }

  function median(values) {
    var sorted = values.slice().sort(function (a, b) { return a - b; });
    var mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }

  /* An image as lines: `line(i)` lists the pixel offsets of line i of a box, rows or
   * columns, from either end. */
  function lineReader(rgb, width, box, rows, reversed) {
    var left = box[0], top = box[1], right = box[2], bottom = box[3];
    var count = rows ? bottom - top : right - left;
    var length = rows ? right - left : bottom - top;
    return {
      count: count,
      length: length,
      offset: function (i, j) {
        var k = reversed ? count - 1 - i : i;
        var x = rows ? left + j : left + k;
        var y = rows ? top + k : top + j;
        return (y * width + x) * 3;
      },
    };
  }

  /* How many leading lines are bar (borders._bar_lines). */
  function barLines(rgb, lines) {
    if (lines.count === 0 || lines.length === 0) return 0;
    var colour = [0, 1, 2].map(function (c) {
      var values = [];
      for (var j = 0; j < lines.length; j++) values.push(rgb[lines.offset(0, j) + c]);
      return Math.trunc(median(values));
    });
    function close(i) {
      var near = 0;
      for (var j = 0; j < lines.length; j++) {
        var o = lines.offset(i, j);
        var diff = Math.max(
          Math.abs(rgb[o] - colour[0]), Math.abs(rgb[o + 1] - colour[1]), Math.abs(rgb[o + 2] - colour[2])
        );
        if (diff <= TOLERANCE) near++;
      }
      return near / lines.length >= LINE_SHARE;
    }
    if (!close(0)) return 0;
    var limit = lines.count >> 1;
    for (var i = 1; i < limit; i++) if (!close(i)) return i;
    return limit;
  }

  function trim(rgb, width, box, rows) {
    var head = barLines(rgb, lineReader(rgb, width, box, rows, false));
    var tail = barLines(rgb, lineReader(rgb, width, box, rows, true));
    return rows
      ? [box[0], box[1] + head, box[2], box[3] - tail]
      : [box[0] + head, box[1], box[2] - tail, box[3]];
  }

  function kept(width, height, box) {
    var left = box[0], top = box[1], right = box[2], bottom = box[3];
    if (bottom - top < MIN_CONTENT * height) { top = 0; bottom = height; }
    if (right - left < MIN_CONTENT * width) { left = 0; right = width; }
    return [
      left >= MIN_BAR * width ? left : 0,
      top >= MIN_BAR * height ? top : 0,
      width - right >= MIN_BAR * width ? right : width,
      height - bottom >= MIN_BAR * height ? bottom : height,
    ];
  }

  /* borders.content_boxes: the whole-image reading, and the nested one when it differs. */
  function contentBoxes(rgb, width, height) {
    var whole = [0, 0, width, height];
    var byRows = trim(rgb, width, whole, true);
    var byCols = trim(rgb, width, whole, false);
    var first = kept(width, height, [byCols[0], byRows[1], byCols[2], byRows[3]]);
    var box = whole;
    [true, false, true].forEach(function (rows) { box = trim(rgb, width, box, rows); });
    var nested = kept(width, height, box);
    return nested.join() === first.join() ? [first] : [first, nested];
  }

  function crop(rgb, width, box) {
    var w = box[2] - box[0], h = box[3] - box[1];
    var out = new Uint8Array(w * h * 3);
    for (var y = 0; y < h; y++) {
      var start = ((box[1] + y) * width + box[0]) * 3;
      out.set(rgb.subarray(start, start + w * 3), y * w * 3);
    }
    return out;
  }

  /* The pdq-window hashes of RGB (3) or RGBA (4) pixels: [{hex, quality}]. */
  function windowHashes(pixels, width, height, channels, minQuality) {
    var small = Resample.thumbnail(Resample.rgb(pixels, width, height, channels), width, height, 3, HASH_SIDE);
    var rgb = small.data, w = small.width, h = small.height;
    var boxes = contentBoxes(rgb, w, h).filter(function (b) {
      return b.join() !== [0, 0, w, h].join();
    });
    WINDOWS.forEach(function (win) { boxes.push(windowBox(win, w, h)); });
    var seen = {};
    var found = [];
    boxes.forEach(function (box) {
      if (box[2] - box[0] < 16 || box[3] - box[1] < 16) return;
      var pdq = PDQ.pdqFromPixels(crop(rgb, w, box), box[2] - box[0], box[3] - box[1], 3);
      if (pdq.quality >= minQuality && !seen[pdq.hash]) {
        seen[pdq.hash] = true;
        found.push({ hex: pdq.hash, quality: pdq.quality });
      }
    });
    return found;
  }

  var api = { windowHashes: windowHashes, contentBoxes: contentBoxes };
  if (node) module.exports = api;
  else root.HashGuardWindows = api;
})(this);
