/*
 * A video's fingerprints, made here from the file the person chose, as `hashguard hash`
 * makes them (service/media/video.py and video_hashes.py): vPDQ, the PDQ and quality of
 * the first frame shown at or after each whole second, timed from the first frame; and
 * SHA-256 and MD5 of the file's bytes. Frames come from a <video> element (the browser's
 * own decoder, which reads the file through a blob: URL, never the network), one seek a
 * second, drawn to a canvas and hashed by pdq.js. Animated GIF and WebP are videos too,
 * read frame by frame with ImageDecoder, each frame shown for its own duration.
 *
 * A seek shows the frame on screen at that time, which for frame rates that do not divide
 * a second (29.97) is the one *before* it; requestVideoFrameCallback says which frame it
 * is, and a short search finds the next one, so the frames are the service's.
 * Needs pdq.js and md5.js.
 */
(function (root) {
  "use strict";

  var PDQ = root.HashGuardPDQ;
  var MD5 = root.HashGuardMD5;
  var MIN_PDQ_QUALITY = 50; // frames below it are not compared (Meta's vPDQ rule)
  var MIN_BIT_SHARE = 1 / 8; // service/signals/base.py: fewer bits set is a flat picture
  var RECORD_BYTES = 37; // 32 bytes of PDQ, 1 of quality, 4 of milliseconds (big-endian)
  var EPS = 0.0005; // seconds: frame times are given to the microsecond or millisecond
  var STEP = 1 / 240; // seconds: finer than any frame rate a forum sees
  var MAX_SEEKS = 40; // per sampled second: a search, bounded
  var WAIT_MS = 30000; // a seek or load that takes longer is a file the browser cannot play
  var FRAME_WAIT_MS = 1500; // requestVideoFrameCallback after a seek
  var MIN_FRAME_MS = 20; // GIF and WebP frames shorter than this are shown for 100 ms,
  var DEFAULT_FRAME_MS = 100; // as browsers and service/media/video.py do

  /* A refusal the page words itself: `code` is a key of the js. catalogue. */
  function VideoError(code, params) {
    this.code = code;
    this.params = params || {};
    this.message = code;
  }

  /* Whether the file's first bytes (and its type) say video; `still` GIF/WebP are photos. */
  function looksLikeVideo(head, type) {
    var text = String.fromCharCode.apply(null, head.slice(0, 12));
    if (text.slice(4, 8) === "ftyp") {
      // HEIF and AVIF photos are ftyp files too; their brands say so.
      return !/^(heic|heix|heim|heis|hevc|hevx|mif1|msf1|avif|avis)$/.test(text.slice(8, 12));
    }
    if (head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return true; // EBML
    if (text.slice(0, 4) === "RIFF" && text.slice(8, 11) === "AVI") return true;
    return /^video\//.test(type || "");
  }

  function isAnimationFormat(head) {
    var text = String.fromCharCode.apply(null, head.slice(0, 12));
    return text.slice(0, 4) === "GIF8" || (text.slice(0, 4) === "RIFF" && text.slice(8, 12) === "WEBP");
  }

  /* For GIF and WebP: how many frames (1 for a still), or 0 when ImageDecoder is missing. */
  async function animationFrameCount(file, head) {
    if (typeof root.ImageDecoder === "undefined") return 0;
    var decoder = new root.ImageDecoder({ data: await file.arrayBuffer(), type: mimeOf(head) });
    try {
      await decoder.tracks.ready;
      await decoder.completed;
      return decoder.tracks.selectedTrack ? decoder.tracks.selectedTrack.frameCount : 1;
    } catch (err) {
      return 0;
    } finally {
      decoder.close();
    }
  }

  function mimeOf(head) {
    return String.fromCharCode.apply(null, head.slice(0, 3)) === "GIF" ? "image/gif" : "image/webp";
  }

  function timeout(ms, code) {
    return new Promise(function (resolve, reject) {
      setTimeout(function () { reject(new VideoError(code || "video_unreadable")); }, ms);
    });
  }

  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
    return out;
  }

  /* The canonical vPDQ value (service/media/video_hashes.py `pack`) as hex. */
  function packFrames(frames) {
    var out = new Uint8Array(frames.length * RECORD_BYTES);
    frames.forEach(function (frame, index) {
      var at = index * RECORD_BYTES;
      for (var i = 0; i < 32; i++) out[at + i] = parseInt(frame.pdq.substr(i * 2, 2), 16);
      out[at + 32] = frame.quality;
      new DataView(out.buffer).setUint32(at + 33, Math.round(frame.timestamp * 1000));
    });
    return hex(out);
  }

  function pdqOfCanvas(context, width, height) {
    var image = context.getImageData(0, 0, width, height);
    return PDQ.pdqFromPixels(image.data, width, height, 4);
  }

  /* ---- videos, through a <video> element ---------------------------------------------- */

  async function loaded(video) {
    await Promise.race([
      new Promise(function (resolve, reject) {
        video.addEventListener("loadeddata", resolve, { once: true });
        video.addEventListener("error", function () { reject(new VideoError("video_unreadable")); }, { once: true });
      }),
      timeout(WAIT_MS),
    ]);
    if (video.duration === Infinity) {
      // Recorded WebM often carries no duration; seeking past the end makes the browser find it.
      video.currentTime = 1e9;
      await Promise.race([
        new Promise(function (resolve) { video.addEventListener("seeked", resolve, { once: true }); }),
        timeout(WAIT_MS),
      ]);
    }
  }

  /* Seek to `at` seconds; the media time of the frame now shown (null when the browser
     does not say). */
  async function show(video, at) {
    var frameTime = new Promise(function (resolve) {
      if (!video.requestVideoFrameCallback) return resolve(null);
      video.requestVideoFrameCallback(function (now, metadata) { resolve(metadata.mediaTime); });
      setTimeout(function () { resolve(null); }, FRAME_WAIT_MS);
    });
    var seeked = new Promise(function (resolve, reject) {
      video.addEventListener("seeked", resolve, { once: true });
      video.addEventListener("error", function () { reject(new VideoError("video_unreadable")); }, { once: true });
    });
    video.currentTime = at;
    await Promise.race([seeked, timeout(WAIT_MS)]);
    return frameTime;
  }

  /*
   * Show the first frame at or after `target` (media seconds); its time, or null when
   * none is left. A seek shows the frame on screen at `target`, which may start before
   * it: then the next frame is found by galloping forward and halving, and the frame
   * step learnt makes later searches one seek.
   */
  async function firstFrameFrom(video, target, state) {
    var seen = await show(video, target);
    if (seen === null) return target < video.duration ? target : null; // no frame times: trust the seek
    if (seen >= target - EPS) return seen;
    var before = seen;
    var seeks = 1;
    if (state.step) {
      var guess = before + state.step + EPS;
      if (guess < video.duration) {
        var found = await show(video, guess);
        seeks++;
        if (found !== null && found >= target - EPS && Math.abs(found - before - state.step) < EPS) {
          return found;
        }
      }
    }
    var low = target;
    var high = null;
    var highFrame = null;
    for (var jump = STEP; seeks < MAX_SEEKS; jump *= 2) {
      var at = target + jump;
      if (at >= video.duration) break;
      var shown = await show(video, at);
      seeks++;
      if (shown !== null && shown >= target - EPS) { high = at; highFrame = shown; break; }
      low = at;
    }
    if (high === null) {
      if (low + STEP >= video.duration || seeks >= MAX_SEEKS) return null;
      high = video.duration;
    }
    while (high - low > STEP && seeks < MAX_SEEKS) {
      var middle = (low + high) / 2;
      var middleFrame = await show(video, middle);
      seeks++;
      if (middleFrame !== null && middleFrame >= target - EPS) { high = middle; highFrame = middleFrame; }
      else low = middle;
    }
    if (highFrame === null) return null;
    if (Math.abs(high - low) <= STEP) {
      var step = highFrame - before; // `before` and `highFrame` are consecutive frames
      if (step > EPS && (!state.step || step < state.step)) state.step = step;
    }
    if (Math.abs(video.currentTime - high) > EPS) await show(video, high);
    return highFrame;
  }

  async function videoFrames(file, limits, progress) {
    var url = URL.createObjectURL(file);
    var video = document.createElement("video");
    video.muted = true;
    video.preload = "auto";
    video.playsInline = true;
    video.className = "sampler";
    video.setAttribute("aria-hidden", "true");
    document.body.appendChild(video);
    video.src = url;
    try {
      await loaded(video);
      var width = video.videoWidth;
      var height = video.videoHeight;
      if (!width || !height) throw new VideoError("video_unreadable");
      if (width * height > limits.maxPixels) {
        throw new VideoError("video_too_large", { width: width, height: height });
      }
      if (!isFinite(video.duration) || video.duration <= 0) throw new VideoError("video_unreadable");
      if (video.duration > limits.maxSeconds) {
        throw new VideoError("video_too_long", { minutes: Math.round(limits.maxSeconds / 60) });
      }
      var canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      var context = canvas.getContext("2d", { willReadFrequently: true });
      var state = { step: 0 };
      var total = Math.max(1, Math.ceil(video.duration / limits.everySeconds));
      var start = await firstFrameFrom(video, 0, state);
      if (start === null) throw new VideoError("video_unreadable");
      var frames = [];
      var next = 0;
      var shown = start;
      while (shown !== null) {
        var at = Math.max(0, shown - start);
        context.drawImage(video, 0, 0, width, height);
        var pdq = pdqOfCanvas(context, width, height);
        frames.push({ pdq: pdq.hash, quality: pdq.quality, timestamp: Math.round(at * 1000) / 1000 });
        if (progress) await progress(Math.min(frames.length, total), total);
        next = (Math.floor(at / limits.everySeconds + 1e-6) + 1) * limits.everySeconds;
        if (start + next >= video.duration) break;
        shown = await firstFrameFrom(video, start + next, state);
      }
      return frames;
    } finally {
      video.removeAttribute("src");
      video.load();
      video.remove();
      URL.revokeObjectURL(url);
    }
  }

  /* ---- animated GIF and WebP, through ImageDecoder ------------------------------------ */

  async function animationFrames(file, head, limits, progress) {
    var decoder = new root.ImageDecoder({ data: await file.arrayBuffer(), type: mimeOf(head) });
    try {
      await decoder.tracks.ready;
      await decoder.completed;
      var count = decoder.tracks.selectedTrack.frameCount;
      var frames = [];
      var at = 0;
      var next = 0;
      var canvas = document.createElement("canvas");
      var context = canvas.getContext("2d", { willReadFrequently: true });
      for (var index = 0; index < count; index++) {
        var image = (await decoder.decode({ frameIndex: index })).image;
        try {
          var width = image.displayWidth;
          var height = image.displayHeight;
          if (width * height > limits.maxPixels) {
            throw new VideoError("video_too_large", { width: width, height: height });
          }
          if (at > limits.maxSeconds) {
            throw new VideoError("video_too_long", { minutes: Math.round(limits.maxSeconds / 60) });
          }
          if (at + 1e-6 >= next) {
            canvas.width = width;
            canvas.height = height;
            context.drawImage(image, 0, 0);
            var pdq = pdqOfCanvas(context, width, height);
            frames.push({ pdq: pdq.hash, quality: pdq.quality, timestamp: Math.round(at * 1000) / 1000 });
            next = (Math.floor(at / limits.everySeconds + 1e-6) + 1) * limits.everySeconds;
          }
          var ms = image.duration ? image.duration / 1000 : 0;
          at += (ms >= MIN_FRAME_MS ? ms : DEFAULT_FRAME_MS) / 1000;
        } finally {
          image.close();
        }
        if (progress) await progress(index + 1, count);
      }
      return frames;
    } catch (err) {
      if (err instanceof VideoError) throw err;
      throw new VideoError("video_unreadable");
    } finally {
      decoder.close();
    }
  }

  /* ---- the file ------------------------------------------------------------------------ */

  /*
   * "video", "photo" or "unreadable" for a chosen file: videos by their first bytes,
   * GIF and WebP by their frame count (a still one is a photo).
   */
  async function kindOf(file) {
    var head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
    if (isAnimationFormat(head)) {
      var count = await animationFrameCount(file, head);
      return count > 1 ? "animation" : "photo";
    }
    return looksLikeVideo(head, file.type) ? "video" : "photo";
  }

  /*
   * {hashes: [{algorithm, hex}], leftOut: ["vpdq"]} for a video file, or a VideoError.
   * `limits`: maxBytes, maxSeconds, maxPixels, everySeconds (the service's VideoLimits);
   * `progress(done, total)` is awaited after each sampled frame.
   */
  async function videoFingerprints(file, kind, limits, progress) {
    if (file.size === 0) throw new VideoError("video_unreadable");
    if (file.size > limits.maxBytes) {
      throw new VideoError("video_too_big", { megabytes: Math.round(limits.maxBytes / 1048576) });
    }
    var head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
    var frames =
      kind === "animation"
        ? await animationFrames(file, head, limits, progress)
        : await videoFrames(file, limits, progress);
    if (!frames.length) throw new VideoError("video_unreadable");
    var bytes = await file.arrayBuffer();
    var hashes = [];
    var leftOut = [];
    // As the service's vpdq type judges a listing (signals/vpdq.py `degenerate`): some
    // frame must be detailed enough to match on, and not almost one colour.
    var informative = frames.some(function (f) {
      if (f.quality < MIN_PDQ_QUALITY) return false;
      var ones = 0;
      for (var i = 0; i < f.pdq.length; i++) {
        for (var v = parseInt(f.pdq[i], 16); v; v >>= 1) ones += v & 1;
      }
      return Math.min(ones, 256 - ones) >= 256 * MIN_BIT_SHARE;
    });
    if (informative) hashes.push({ algorithm: "vpdq", hex: packFrames(frames) });
    else leftOut.push("vpdq");
    hashes.push({ algorithm: "video-sha256", hex: hex(new Uint8Array(await root.crypto.subtle.digest("SHA-256", bytes))) });
    hashes.push({ algorithm: "video-md5", hex: MD5.md5(bytes) });
    return { hashes: hashes, leftOut: leftOut, frames: frames };
  }

  root.HashGuardVideo = {
    kindOf: kindOf,
    videoFingerprints: videoFingerprints,
    packFrames: packFrames,
    VideoError: VideoError,
  };
})(this);
