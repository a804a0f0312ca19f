/*
 * The victim page: hash the chosen photos and videos here (the same set as `hashguard
 * hash`: for a photo PDQ with quality, pdq-window, pHash, SHA-256 and MD5; for a video
 * vPDQ, SHA-256 and MD5, static/video.js), then send only those codes to /api/cases.
 * Files are read into memory and decoded by the browser; no byte of them is ever put
 * in a request.
 */
(function () {
  "use strict";

  var form = document.getElementById("submit-form");
  if (!form) return;
  var input = document.getElementById("photos");
  var progress = document.getElementById("progress");
  var send = document.getElementById("send");
  var sendError = document.getElementById("send-error");
  var fingerprints = [];
  var t = window.HashGuardMessages.t;
  var Video = window.HashGuardVideo;

  /* The service's video limits (service/media/video.py VideoLimits), from the form. */
  function limits() {
    return {
      maxBytes: Number(form.dataset.videoMaxBytes),
      maxSeconds: Number(form.dataset.videoMaxSeconds),
      maxPixels: Number(form.dataset.videoMaxPixels),
      everySeconds: Number(form.dataset.videoEverySeconds),
    };
  }

  /* Decode like the service does: upright (EXIF orientation), colours as stored. */
  async function pixelsOf(file) {
    var bitmap = await createImageBitmap(file, {
      imageOrientation: "from-image",
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
    });
    var canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    var context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
    return context.getImageData(0, 0, canvas.width, canvas.height);
  }

  /* The same hashes as `hashguard hash` (static/fingerprints.js). */
  async function fingerprint(file) {
    var bytes = await file.arrayBuffer();
    var image = await pixelsOf(file);
    return window.HashGuardFingerprints.fingerprints(bytes, image.data, image.width, image.height, 4, true);
  }

  /* Let the browser paint the progress line before the next long computation. */
  function paint() {
    return new Promise(function (resolve) { requestAnimationFrame(function () { setTimeout(resolve, 0); }); });
  }

  function line(text, kind) {
    var item = document.createElement("li");
    item.textContent = text;
    if (kind) item.className = kind;
    progress.appendChild(item);
    return item;
  }

  input.addEventListener("change", async function () {
    fingerprints = [];
    progress.textContent = "";
    sendError.hidden = true;
    send.disabled = true;
    var files = Array.prototype.slice.call(input.files);
    for (var i = 0; i < files.length; i++) {
      var kind = await Video.kindOf(files[i]).catch(function () { return "photo"; });
      if (kind === "photo") await addPhoto(files[i], i, files.length);
      else await addVideo(files[i], kind, i, files.length);
    }
    send.disabled = fingerprints.length === 0;
  });

  async function addPhoto(file, i, total) {
    var label = t("photo_label", { n: i + 1, total: total });
    var item = line(t("working", { label: label }));
    item.setAttribute("aria-busy", "true");
    await paint();
    try {
      var result = await fingerprint(file);
      fingerprints = fingerprints.concat(result.hashes);
      item.textContent = t("ready", { label: label });
      if (result.leftOut.length) {
        // Codes that would match unrelated pictures are left out, as `hashguard hash` does.
        item.textContent += " " + t("flat");
        item.className = "note";
      } else {
        item.className = "ok";
      }
      if (!result.hashes.length) throw new Error("nothing to send");
    } catch (err) {
      item.textContent = t("unreadable", { label: label });
      item.className = "bad";
    }
    item.removeAttribute("aria-busy");
  }

  /* A video: one picture a second, with a progress bar; refusals say which limit. */
  async function addVideo(file, kind, i, total) {
    var label = t("video_label", { n: i + 1, total: total });
    var item = line("");
    var text = document.createElement("span");
    text.textContent = t("video_working", { label: label });
    var bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", label);
    item.appendChild(text);
    item.appendChild(bar);
    item.setAttribute("aria-busy", "true");
    await paint();
    try {
      var result = await Video.videoFingerprints(file, kind, limits(), async function (done, all) {
        bar.max = all;
        bar.value = done;
        bar.setAttribute("aria-valuetext", t("video_seconds", { done: done, total: all }));
        if (done % 5 === 0) await paint();
      });
      fingerprints = fingerprints.concat(result.hashes);
      item.textContent = t("ready", { label: label });
      if (result.leftOut.length) {
        item.textContent += " " + t("video_flat");
        item.className = "note";
      } else {
        item.className = "ok";
      }
    } catch (err) {
      var code = err instanceof Video.VideoError ? err.code : "video_unreadable";
      item.textContent = t(code, Object.assign({ label: label }, err.params || {}));
      item.className = "bad";
    }
    item.removeAttribute("aria-busy");
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (!fingerprints.length) return;
    send.disabled = true;
    send.textContent = t("sending");
    sendError.hidden = true;
    try {
      var response = await fetch("/api/cases", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: JSON.stringify({ hashes: fingerprints }),
        credentials: "same-origin",
      });
      var answer = await response.json();
      if (!response.ok) throw new Error(answer.error || t("send_failed"));
      showCase(answer);
    } catch (err) {
      sendError.textContent = err.message || t("send_failed");
      sendError.hidden = false;
      send.disabled = false;
      send.textContent = t("send");
    }
  });

  function showCase(answer) {
    fingerprints = [];
    input.value = "";
    document.getElementById("start").hidden = true;
    var result = document.getElementById("result");
    document.getElementById("case-id").textContent = answer.case_id;
    document.getElementById("case-token").textContent = answer.case_token;
    var text = [
      t("file_title"),
      t("file_case", { id: answer.case_id }),
      t("file_secret", { token: answer.case_token }),
      "",
    ].join("\n");
    document.getElementById("copy").addEventListener("click", async function () {
      var status = document.getElementById("copy-status");
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = t("copied");
      } catch (err) {
        status.textContent = t("copy_blocked");
      }
    });
    document.getElementById("save").addEventListener("click", function () {
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      link.download = t("file_name");
      link.click();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
    });
    result.hidden = false;
    result.focus();
    window.scrollTo(0, 0);
  }
})();
