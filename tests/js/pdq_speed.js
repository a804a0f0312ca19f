// How long pdq.js takes per image size (hashing only; a browser's decoding comes on top).
// Usage: node tests/js/pdq_speed.js   (docs/WEB.md records the figures)
"use strict";
const path = require("path");
const { pdqFromPixels } = require(path.join(__dirname, "../../service/web/static/pdq.js"));

const ROUNDS = 3;
console.log("width  height  megapixels  ms per image");
for (const [width, height] of [[640, 480], [1280, 960], [4000, 3000]]) {
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
  const start = process.hrtime.bigint();
  for (let r = 0; r < ROUNDS; r++) pdqFromPixels(pixels, width, height, 4);
  const ms = Number(process.hrtime.bigint() - start) / 1e6 / ROUNDS;
  console.log(`${String(width).padStart(5)}  ${String(height).padStart(6)}  ` +
    `${((width * height) / 1e6).toFixed(1).padStart(10)}  ${ms.toFixed(0).padStart(12)}`);
}
