/*
 * The victim page: hash the chosen photos here (PDQ with quality, SHA-256 of the file's
 * bytes), then send only those codes to /api/cases. The photo is read into memory and
 * decoded by the browser; no byte of it is ever put in a request.
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

  function hex(buffer) {
    return Array.prototype.map
      .call(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); })
      .join("");
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

  var MIN_PDQ_QUALITY = 50; // the service's default --pdq-min-quality

  async function fingerprint(file) {
    var bytes = await file.arrayBuffer();
    var sha256 = hex(await crypto.subtle.digest("SHA-256", bytes));
    var image = await pixelsOf(file);
    var pdq = window.HashGuardPDQ.pdqFromPixels(image.data, image.width, image.height, 4);
    return [
      { algorithm: "pdq", hex: pdq.hash, quality: pdq.quality },
      { algorithm: "sha256", hex: sha256 },
    ];
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
      var label = "Photo " + (i + 1) + " of " + files.length;
      var item = line(label + ": making its fingerprint…");
      try {
        var codes = await fingerprint(files[i]);
        item.textContent = label + ": fingerprint ready.";
        if (codes[0].quality < MIN_PDQ_QUALITY) {
          // The service refuses a PDQ this flat (it would match unrelated pictures), and
          // with it the whole case: send the exact fingerprint only.
          fingerprints = fingerprints.concat(codes.slice(1));
          item.textContent += " This picture has little detail, so only exact copies may be recognised.";
          item.className = "note";
        } else {
          fingerprints = fingerprints.concat(codes);
          item.className = "ok";
        }
      } catch (err) {
        item.textContent = label + ": this file could not be read as a photo. It will be left out.";
        item.className = "bad";
      }
    }
    send.disabled = fingerprints.length === 0;
  });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (!fingerprints.length) return;
    send.disabled = true;
    send.textContent = "Sending…";
    sendError.hidden = true;
    try {
      var response = await fetch("/api/cases", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
        body: JSON.stringify({ hashes: fingerprints }),
        credentials: "same-origin",
      });
      var answer = await response.json();
      if (!response.ok) throw new Error(answer.error || "Something went wrong. Please try again.");
      showCase(answer);
    } catch (err) {
      sendError.textContent = err.message || "The fingerprints could not be sent. Please try again.";
      sendError.hidden = false;
      send.disabled = false;
      send.textContent = "Send fingerprints";
    }
  });

  function showCase(answer) {
    fingerprints = [];
    input.value = "";
    document.getElementById("start").hidden = true;
    var result = document.getElementById("result");
    document.getElementById("case-id").textContent = answer.case_id;
    document.getElementById("case-token").textContent = answer.case_token;
    var text = "HashGuard case\nCase number: " + answer.case_id + "\nSecret code: " + answer.case_token + "\n";
    document.getElementById("copy").addEventListener("click", async function () {
      var status = document.getElementById("copy-status");
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = "Copied. Paste them somewhere private.";
      } catch (err) {
        status.textContent = "Copying is not allowed here. Please select the codes and copy them, or save them as a file.";
      }
    });
    document.getElementById("save").addEventListener("click", function () {
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      link.download = "hashguard-case.txt";
      link.click();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
    });
    result.hidden = false;
    result.focus();
    window.scrollTo(0, 0);
  }
})();
