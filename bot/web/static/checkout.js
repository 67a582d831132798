// Comfort only: every page works without JavaScript.
// - In a Telegram Mini App, hand the page's forms Telegram's initData (the server checks its
//   signature, its age and that it is the link's user) and check it once on load.
// - A pressed submit button is disabled so an impatient double tap sends one request.
(function () {
  "use strict";
  var KEY = "esign_tg_init_data";

  function initData() {
    var fromHash = "";
    try {
      fromHash = new URLSearchParams(window.location.hash.slice(1)).get("tgWebAppData") || "";
    } catch (e) { fromHash = ""; }
    var tg = window.Telegram && window.Telegram.WebApp && window.Telegram.WebApp.initData;
    var value = fromHash || tg || "";
    try {
      if (value) { window.sessionStorage.setItem(KEY, value); }
      else { value = window.sessionStorage.getItem(KEY) || ""; }
    } catch (e) { /* storage may be off */ }
    return value;
  }

  function addToForms(value) {
    var forms = document.querySelectorAll("form[method=post]");
    for (var i = 0; i < forms.length; i++) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "tg_init_data";
      input.value = value;
      forms[i].appendChild(input);
    }
  }

  function checkOnce(value) {
    var url = document.body.getAttribute("data-miniapp-check");
    if (!url || !window.fetch) { return; }
    var body = new URLSearchParams();
    body.set("tg_init_data", value);
    body.set("csrf", document.body.getAttribute("data-csrf") || "");
    fetch(url, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        if (answer && answer.ok === false && answer.title) {
          var main = document.getElementById("main");
          main.textContent = "";
          var card = document.createElement("section");
          card.className = "card result closed";
          var badge = document.createElement("div");
          badge.className = "badge";
          badge.setAttribute("aria-hidden", "true");
          badge.textContent = "!";
          card.appendChild(badge);
          var h = document.createElement("h1");
          h.textContent = answer.title;
          var p = document.createElement("p");
          p.textContent = answer.body || "";
          card.appendChild(h);
          card.appendChild(p);
          main.appendChild(card);
        }
      })
      .catch(function () { /* the server checks again on every form */ });
  }

  function guardDoubleSubmit() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
      form.setAttribute("data-sent", "1");
      var submitter = event.submitter;
      window.setTimeout(function () {
        var buttons = form.querySelectorAll("button[type=submit]");
        for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
        if (submitter) { submitter.disabled = true; }
      }, 0);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var value = initData();
    if (value) {
      addToForms(value);
      checkOnce(value);
    }
    guardDoubleSubmit();
  });
})();
