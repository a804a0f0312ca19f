/*
 * The page's words in the visitor's language: the `js.` keys of the catalogue
 * (service/web/locales), which the page carries as JSON in #hg-messages.
 * HashGuardMessages.t("ready", {label: "Photo 1 of 2"}).
 */
(function (root) {
  "use strict";
  var element = document.getElementById("hg-messages");
  var messages = element ? JSON.parse(element.textContent || "{}") : {};

  function t(key, params) {
    var text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(params[name]));
    });
    return text;
  }

  root.HashGuardMessages = { t: t };
})(this);
